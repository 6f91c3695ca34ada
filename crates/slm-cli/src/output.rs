//! Writing results to stdout without panicking when the reader goes away.
//!
//! `println!` panics on a closed pipe (`slm show --tensors | head -1`). Everything the CLI prints
//! goes through [`outln!`] instead, which returns the I/O error; `main` treats a broken pipe as a
//! normal, quiet end.

use std::io::Write;

/// Writes one formatted line to stdout.
pub fn write_line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")
}

/// `println!` that returns `Err` (with `?`) instead of panicking.
macro_rules! outln {
    () => { crate::output::write_line(format_args!(""))? };
    ($($arg:tt)*) => { crate::output::write_line(format_args!($($arg)*))? };
}

/// True when `err` (anywhere in its chain) is a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
