//! DER files: exactly one certificate (trailing bytes are the parser's to refuse).

use std::path::Path;

use super::FileError;

/// The file's one certificate; an empty file holds none.
pub(crate) fn certificates(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FileError> {
    if bytes.is_empty() {
        return Err(FileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(vec![bytes.to_vec()])
}
