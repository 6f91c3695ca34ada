//! slm-runtime (under construction).
