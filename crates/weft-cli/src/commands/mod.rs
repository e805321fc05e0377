//! One module per subcommand.

pub mod analyze;
pub mod echo;
pub mod validate;

/// Exit code for a usage error or an input that cannot be read at all.
pub const EXIT_USAGE: u8 = 2;
