//! The `TypeID` suffix: a 128-bit UUID as 26 lower-case Crockford base32 characters.
//!
//! See the `TypeID` specification (jetify-com/typeid): the first character carries the top 3
//! bits and so is `0`..`7`; the encoding keeps the UUID's byte order, so sorting the text sorts
//! the ids by their UUID v7 timestamps.

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Length of an encoded suffix.
pub(super) const LEN: usize = 26;

pub(super) fn encode(value: u128) -> String {
    (0..LEN)
        .map(|position| {
            let shift = 5 * (LEN - 1 - position);
            // Masked to 5 bits, so the index is always in the alphabet.
            let digit = usize::try_from((value >> shift) & 0x1f).unwrap_or(0);
            char::from(ALPHABET.get(digit).copied().unwrap_or(b'0'))
        })
        .collect()
}

pub(super) fn decode(text: &str) -> Result<u128, &'static str> {
    if text.len() != LEN {
        return Err("the part after the prefix must be 26 characters");
    }
    if !text.starts_with(|c: char| ('0'..='7').contains(&c)) {
        return Err("the first character after the prefix must be 0-7");
    }
    text.bytes().try_fold(0u128, |value, byte| {
        let digit = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .ok_or("only the lower-case Crockford base32 alphabet is allowed")?;
        Ok((value << 5) | digit as u128)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_typeid_specification_vectors() {
        // From the TypeID spec's valid.yml.
        assert_eq!(encode(0), "00000000000000000000000000");
        assert_eq!(encode(1), "00000000000000000000000001");
        assert_eq!(encode(u128::MAX), "7zzzzzzzzzzzzzzzzzzzzzzzzz");
        assert_eq!(
            encode(0x0189_0a5d_ac96_774b_bcce_b302_099a_8057),
            "01h455vb4pex5vsknk084sn02q"
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
