//! Secret bytes of any length (a mesh secret): wiped when dropped, never shown by `Debug`.

use core::fmt;
use core::ops::Deref;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes, zeroized on drop; `Debug` prints neither the bytes nor their length.
#[derive(Clone, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
}

impl Deref for SecretBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_the_bytes_are_there() {
        let s = SecretBytes::from(vec![0xab; 20]);
        assert_eq!(format!("{s:?}"), "SecretBytes(redacted)");
        assert_eq!(
            format!("{:?}", Some(s.clone())),
            "Some(SecretBytes(redacted))"
        );
        assert_eq!(s.as_bytes(), &[0xab; 20]);
        assert_eq!(Some(s).as_deref(), Some(&[0xab; 20][..]));
    }
}
