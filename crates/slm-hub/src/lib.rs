//! slm-hub (under construction).
