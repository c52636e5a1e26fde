//! The few DER operations Certificate Transparency and AIA chasing need beyond x509-parser:
//! splitting a byte string into elements (tag, contents, whole encoding) and writing an element
//! back, so that a TBSCertificate can be re-encoded without one extension (`tls::ct`) and a
//! degenerate PKCS#7 bundle taken apart (`tls::aia`).
//!
//! Only single-byte tags and definite lengths of up to four octets: what DER certificates use.
//! Every read is checked against the input; nothing here panics on any input.

/// One DER element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    /// The identifier octet (class, constructed bit and tag number).
    pub(crate) tag: u8,
    /// The contents octets.
    pub(crate) contents: &'a [u8],
    /// The whole encoding: identifier, length and contents.
    pub(crate) raw: &'a [u8],
}

/// The tag of a SEQUENCE.
pub(crate) const SEQUENCE: u8 = 0x30;
/// The tag of an OCTET STRING.
pub(crate) const OCTET_STRING: u8 = 0x04;
/// The tag of an OBJECT IDENTIFIER.
pub(crate) const OID: u8 = 0x06;

/// The first element of `input` and what follows it; `None` when it is not well-formed.
pub(crate) fn split(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let octets = rest.get(..n)?;
        let len = octets
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest.get(n..)?)
    };
    let contents = rest.get(..len)?;
    let after = rest.get(len..)?;
    let raw = input.get(..input.len() - after.len())?;
    Some((Element { tag, contents, raw }, after))
}

/// Every element of `input` in order (at most `max`); `None` when any is malformed or there
/// are more than `max`.
pub(crate) fn elements(mut input: &[u8], max: usize) -> Option<Vec<Element<'_>>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        if out.len() == max {
            return None;
        }
        let (e, rest) = split(input)?;
        out.push(e);
        input = rest;
    }
    Some(out)
}

/// The contents of `input` when it is exactly one element with `tag`.
pub(crate) fn only(input: &[u8], tag: u8) -> Option<&[u8]> {
    match split(input)? {
        (e, []) if e.tag == tag => Some(e.contents),
        _ => None,
    }
}

/// The DER encoding of an element with `tag` and `contents`.
pub(crate) fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend(octets);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_split_round_trips_short_and_long_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let contents = vec![7u8; len];
            let der = encode(SEQUENCE, &contents);
            let (e, rest) = split(&der).unwrap();
            assert_eq!(
                (e.tag, e.contents.len(), e.raw.len(), rest),
                (SEQUENCE, len, der.len(), &[][..])
            );
        }
    }

    #[test]
    fn truncated_or_overlong_input_is_refused_without_panicking() {
        assert_eq!(split(&[]), None);
        assert_eq!(split(&[0x30]), None);
        assert_eq!(split(&[0x30, 0x05, 1, 2]), None);
        assert_eq!(split(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(split(&[0x1f, 0x01, 0x00]), None);
        assert_eq!(elements(&[0x04, 0x00, 0x04, 0x00, 0x04, 0x00], 2), None);
        assert_eq!(only(&[0x04, 0x00, 0x04, 0x00], OCTET_STRING), None);
    }
}
