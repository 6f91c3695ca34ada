//! `slm fit`: will a model run on a device, and how fast? Memory is computed from the file's
//! tensors and the context's exact buffer sizes; speed from a per-type model of the device's
//! kernels (bytes streamed per generated token, multiply-adds per prompt token), measured on this
//! machine by a short probe ([`probe::measure`]) or taken from a profile ([`profile`]); a
//! measured profile is then calibrated on a real model ([`calibrate::calibrate`]) for the work
//! the probe does not time, as a cost per token and block.
//!
//! ```text
//!  GgufFile (+ --quant: quantize::plan) ──► Footprint (bytes and shapes per linear)
//!  Footprint × DeviceProfile × (n_ctx, n_batch) ──► Prediction (memory parts, pp/tg tok/s, verdict)
//! ```

pub mod calibrate;
mod footprint;
mod predict;
pub mod probe;
pub mod profile;

pub use footprint::{Footprint, LinearShape};
pub use predict::{best_fit, predict, Prediction, Verdict};
pub use profile::{builtin_profiles, DeviceProfile};
#[cfg(test)]
mod probe_check;
