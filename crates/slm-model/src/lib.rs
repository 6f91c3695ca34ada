//! slm-model (under construction).
