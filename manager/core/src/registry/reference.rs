//! Image references (`[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`) and the image
//! name a pull gives by default.

use oci_client::Reference;

use crate::error::Result;
use crate::invalid;

/// Parse `reference`, naming it in the error.
pub fn parse(reference: &str) -> Result<Reference> {
    match reference.parse::<Reference>() {
        Ok(r) => Ok(r),
        Err(e) => invalid!(
            "invalid image reference {reference:?} ({e}): use [REGISTRY/]REPOSITORY[:TAG][@DIGEST]"
        ),
    }
}

/// The boxctl image name a pull of `r` makes unless told otherwise: the
/// repository's last component, `-TAG` appended unless the tag is `latest`.
pub fn default_name(r: &Reference) -> String {
    let base = r.repository().rsplit('/').next().unwrap_or("image");
    let mut name = match r.tag() {
        Some(t) if t != "latest" => format!("{base}-{t}"),
        _ => base.to_string(),
    };
    name.truncate(63);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        let n = |s: &str| default_name(&parse(s).expect("a reference"));
        assert_eq!(n("127.0.0.1:5000/tests/bb:latest"), "bb");
        assert_eq!(n("127.0.0.1:5000/bb:1.2"), "bb-1.2");
        assert_eq!(n("busybox"), "busybox");
        assert!(parse("has space:x").is_err());
        assert!(parse("").is_err());
    }
}
