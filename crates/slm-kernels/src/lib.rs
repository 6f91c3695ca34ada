//! slm-kernels (under construction).
