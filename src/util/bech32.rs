//! Bech32 (BIP 173) decoding, for age recipients (`age1…`): the checksum is checked, so a
//! mistyped recipient is refused, never encrypted to.

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// The human-readable part and the data bytes of a Bech32 string; why not, in words.
pub fn decode(s: &str) -> Result<(String, Vec<u8>), &'static str> {
    if s.bytes().any(|b| b.is_ascii_lowercase()) && s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("mixes upper and lower case");
    }
    let s = s.to_ascii_lowercase();
    let (hrp, data) = s.rsplit_once('1').ok_or("has no separator '1'")?;
    if hrp.is_empty() || data.len() < 6 {
        return Err("is too short");
    }
    if !hrp.bytes().all(|b| (33..=126).contains(&b)) {
        return Err("has a character out of range");
    }
    let five: Vec<u8> = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<_>>()
        .ok_or("has a character outside Bech32's alphabet")?;
    let expanded = hrp
        .bytes()
        .map(|b| b >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.bytes().map(|b| b & 31));
    if polymod(expanded.chain(five.iter().copied())) != 1 {
        return Err("fails its checksum (a character mistyped?)");
    }
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in &five[..five.len() - 6] {
        acc = (acc << 5) | u32::from(*v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits >= 5 || (acc & ((1 << bits) - 1)) != 0 {
        return Err("has padding that is not zero");
    }
    Ok((hrp.to_string(), out))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_and_refuses() {
        // BIP 173's valid test vectors.
        assert_eq!(decode("A12UEL5L"), Ok(("a".into(), vec![])));
        assert_eq!(
            decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"),
            Ok((
                "abcdef".into(),
                vec![
                    0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf, 0x84, 0x65, 0x3a,
                    0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf
                ]
            ))
        );
        let (hrp, key) =
            decode("age13fcarhkqeuhn3vfk77c4w82fwuw06mnvqfc97r9dq4t2skzq53lsp2l46u").unwrap();
        assert_eq!((hrp.as_str(), key.len()), ("age", 32));
        // One character changed, case mixed, a foreign character.
        assert!(decode("age13fcarhkqeuhn3vfk77c4w82fwuw06mnvqfc97r9dq4t2skzq53lsp2l46v").is_err());
        assert!(decode("Age13fcarhkqeuhn3vfk77c4w82fwuw06mnvqfc97r9dq4t2skzq53lsp2l46u").is_err());
        assert!(decode("age1bfcarhkqeuhn3vfk77c4w82fwuw06mnvqfc97r9dq4t2skzq53lsp2l46u").is_err());
        assert!(decode("x1").is_err());
    }
}
