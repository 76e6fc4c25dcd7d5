//! The `TypeID` suffix: a 128-bit UUID as 26 lower-case Crockford base32 characters.
//!
//! See the `TypeID` specification (jetify-com/typeid): the first character carries the top 3
//! bits and so is `0`..`7`; the encoding keeps the UUID's byte order, so sorting the text sorts
//! the ids by their UUID v7 timestamps.

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Length of an encoded suffix.
pub(super) const LEN: usize = 26;

/// The 26 characters of `value`, without allocating.
pub(super) fn encode(value: u128) -> [u8; LEN] {
    let mut text = [b'0'; LEN];
    for (position, slot) in text.iter_mut().enumerate() {
        let shift = 5 * (LEN - 1 - position);
        // Masked to 5 bits, so the index is always in the alphabet.
        let digit = usize::try_from((value >> shift) & 0x1f).unwrap_or(0);
        *slot = ALPHABET.get(digit).copied().unwrap_or(b'0');
    }
    text
}

/// The value of each byte in the alphabet, or `INVALID`.
// Evaluated at compile time: an index out of bounds would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const DIGITS: [u8; 256] = {
    let mut digits = [INVALID; 256];
    let mut digit: u8 = 0;
    while digit < 32 {
        digits[ALPHABET[digit as usize] as usize] = digit;
        digit += 1;
    }
    digits
};
const INVALID: u8 = 0xff;

pub(super) fn decode(text: &str) -> Result<u128, &'static str> {
    if text.len() != LEN {
        return Err("the part after the prefix must be 26 characters");
    }
    if !text.starts_with(|c: char| ('0'..='7').contains(&c)) {
        return Err("the first character after the prefix must be 0-7");
    }
    text.bytes().try_fold(0u128, |value, byte| {
        match DIGITS.get(usize::from(byte)).copied() {
            Some(digit) if digit != INVALID => Ok((value << 5) | u128::from(digit)),
            _ => Err("only the lower-case Crockford base32 alphabet is allowed"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_typeid_specification_vectors() {
        // From the TypeID spec's valid.yml.
        assert_eq!(&encode(0), b"00000000000000000000000000");
        assert_eq!(&encode(1), b"00000000000000000000000001");
        assert_eq!(&encode(u128::MAX), b"7zzzzzzzzzzzzzzzzzzzzzzzzz");
        assert_eq!(
            &encode(0x0189_0a5d_ac96_774b_bcce_b302_099a_8057),
            b"01h455vb4pex5vsknk084sn02q"
        );
        assert_eq!(
            decode("01h455vb4pex5vsknk084sn02q"),
            Ok(0x0189_0a5d_ac96_774b_bcce_b302_099a_8057)
        );
    }

    #[test]
    fn refuses_bad_text() {
        assert!(decode("8zzzzzzzzzzzzzzzzzzzzzzzzz").is_err());
        assert!(decode("0000000000000000000000000").is_err());
        assert!(decode("0000000000000000000000000u").is_err());
        assert!(decode("0000000000000000000000000A").is_err());
    }
}
