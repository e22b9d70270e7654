//! The lab's file writes: each config, key list and script replaced whole
//! (state::write_atomic), with the path in the error.

use color_eyre::eyre::{Result, WrapErr};
use std::path::Path;

pub(crate) fn write_atomic(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<()> {
    let path = path.as_ref();
    crate::state::write_atomic(path, contents.as_ref(), None)
        .wrap_err_with(|| format!("replacing {}", path.display()))
}
