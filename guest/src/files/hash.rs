//! `hash_file`: streams a file through a RustCrypto hasher in fixed-size
//! chunks (constant memory) and returns the live hasher, like hashlib.

use std::fmt::Write as _;
use std::io::Read;

use digest::{DynDigest, ExtendableOutput, Update, XofReader};

use super::open_for_read;
use crate::error::{Error, Result};

/// Read size while hashing (upstream uses 256 KiB too; it does not change the digest).
const CHUNK: usize = 1024 * 1024;

/// What hashlib reports about an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashInfo {
    /// Canonical hashlib name.
    pub name: &'static str,
    /// Digest size in bytes (0 for extendable output).
    pub digest_size: u32,
    /// Internal block size in bytes (hashlib's `block_size`).
    pub block_size: u32,
}

enum State {
    Fixed(Box<dyn DynDigest>),
    Shake128(shake::Shake128),
    Shake256(shake::Shake256),
}

impl Clone for State {
    fn clone(&self) -> Self {
        match self {
            State::Fixed(d) => State::Fixed(d.box_clone()),
            State::Shake128(s) => State::Shake128(s.clone()),
            State::Shake256(s) => State::Shake256(s.clone()),
        }
    }
}

/// A live hash object (hashlib's `update` / `copy` / `hexdigest`).
#[derive(Clone)]
pub struct Hasher {
    info: HashInfo,
    state: State,
}

impl Hasher {
    /// A fresh hasher for a hashlib algorithm name (see [`lookup`]).
    pub fn new(hash_alg: &str) -> Result<Self> {
        let (info, state) = lookup(hash_alg)
            .ok_or_else(|| Error::UnsupportedHash(format!("unsupported hash type {hash_alg}")))?;
        Ok(Hasher { info, state })
    }

    /// hashlib's `name`, `digest_size` and `block_size` of this hasher.
    pub fn info(&self) -> HashInfo {
        self.info
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Fixed(d) => d.update(data),
            State::Shake128(s) => Update::update(s, data),
            State::Shake256(s) => Update::update(s, data),
        }
    }

    /// The digest of everything fed so far; `length` (bytes) is required for
    /// SHAKE and ignored otherwise. The hasher stays usable.
    pub fn digest(&self, length: Option<u32>) -> Result<Vec<u8>> {
        fn xof(reader: &mut impl XofReader, length: Option<u32>) -> Result<Vec<u8>> {
            let length = length.ok_or_else(|| {
                Error::Type("hexdigest() missing required argument 'length' (pos 1)".into())
            })?;
            let mut out = vec![0u8; length as usize];
            reader.read(&mut out);
            Ok(out)
        }
        match &self.state {
            State::Fixed(d) => Ok(d.box_clone().finalize().into_vec()),
            State::Shake128(s) => xof(&mut s.clone().finalize_xof(), length),
            State::Shake256(s) => xof(&mut s.clone().finalize_xof(), length),
        }
    }

    /// Lowercase hex of [`Hasher::digest`].
    pub fn hexdigest(&self, length: Option<u32>) -> Result<String> {
        Ok(to_hex(&self.digest(length)?))
    }
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `hash_file(path, hash_alg)`: the path is opened first (a bad path wins
/// over a bad name), then the whole content is hashed.
pub fn hash_file(path: &str, hash_alg: &str) -> Result<Hasher> {
    hash_from(open_for_read(path)?.0, hash_alg)
}

/// The rest of [`hash_file`] once the file is open: `hash_alg` is looked
/// up, then all of `file` is hashed.
pub fn hash_from(mut file: impl Read, hash_alg: &str) -> Result<Hasher> {
    let mut hasher = Hasher::new(hash_alg)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let read = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_io(&e, None)),
        };
        hasher.update(&buf[..read]);
    }
    Ok(hasher)
}

fn fixed(
    name: &'static str,
    digest_size: u32,
    block_size: u32,
    d: Box<dyn DynDigest>,
) -> (HashInfo, State) {
    (
        HashInfo {
            name,
            digest_size,
            block_size,
        },
        State::Fixed(d),
    )
}

/// The accepted spellings of SPEC §4.2: hashlib's names in any ASCII case,
/// except the underscore names, which are accepted in lowercase only.
fn lookup(name: &str) -> Option<(HashInfo, State)> {
    let lower = name.to_ascii_lowercase();
    let exact = |canonical: &str| name == canonical;
    let any = |spellings: &[&str]| spellings.contains(&lower.as_str());
    Some(if any(&["md5"]) {
        fixed("md5", 16, 64, Box::new(md5::Md5::default()))
    } else if any(&["sha1", "sha-1"]) {
        fixed("sha1", 20, 64, Box::new(sha1::Sha1::default()))
    } else if any(&["sha224", "sha-224", "sha2-224"]) {
        fixed("sha224", 28, 64, Box::new(sha2::Sha224::default()))
    } else if any(&["sha256", "sha-256", "sha2-256"]) {
        fixed("sha256", 32, 64, Box::new(sha2::Sha256::default()))
    } else if any(&["sha384", "sha-384", "sha2-384"]) {
        fixed("sha384", 48, 128, Box::new(sha2::Sha384::default()))
    } else if any(&["sha512", "sha-512", "sha2-512"]) {
        fixed("sha512", 64, 128, Box::new(sha2::Sha512::default()))
    } else if exact("sha512_224") || any(&["sha512-224"]) {
        fixed("sha512_224", 28, 128, Box::new(sha2::Sha512_224::default()))
    } else if exact("sha512_256") || any(&["sha512-256"]) {
        fixed("sha512_256", 32, 128, Box::new(sha2::Sha512_256::default()))
    } else if exact("sha3_224") || any(&["sha3-224"]) {
        fixed("sha3_224", 28, 144, Box::new(sha3::Sha3_224::default()))
    } else if exact("sha3_256") || any(&["sha3-256"]) {
        fixed("sha3_256", 32, 136, Box::new(sha3::Sha3_256::default()))
    } else if exact("sha3_384") || any(&["sha3-384"]) {
        fixed("sha3_384", 48, 104, Box::new(sha3::Sha3_384::default()))
    } else if exact("sha3_512") || any(&["sha3-512"]) {
        fixed("sha3_512", 64, 72, Box::new(sha3::Sha3_512::default()))
    } else if exact("blake2b") || any(&["blake2b512", "blake2b-512"]) {
        fixed("blake2b", 64, 128, Box::new(blake2::Blake2b512::default()))
    } else if exact("blake2s") || any(&["blake2s256", "blake2s-256"]) {
        fixed("blake2s", 32, 64, Box::new(blake2::Blake2s256::default()))
    } else if exact("shake_128") || any(&["shake128", "shake-128"]) {
        let info = HashInfo {
            name: "shake_128",
            digest_size: 0,
            block_size: 168,
        };
        (info, State::Shake128(Default::default()))
    } else if exact("shake_256") || any(&["shake256", "shake-256"]) {
        let info = HashInfo {
            name: "shake_256",
            digest_size: 0,
            block_size: 136,
        };
        (info, State::Shake256(Default::default()))
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of(alg: &str, data: &[u8], len: Option<u32>) -> String {
        let mut h = Hasher::new(alg).unwrap();
        h.update(data);
        h.hexdigest(len).unwrap()
    }

    #[test]
    fn known_digests() {
        assert_eq!(
            hex_of("MD5", b"hello world\n", None),
            "6f5902ac237024bdd0c176cb93063dc4"
        );
        assert_eq!(
            hex_of("shake128", b"hello world\n", Some(8)),
            "37d6c4dad1d36a34"
        );
        assert_eq!(
            hex_of("blake2s256", b"hello world\n", None),
            "9e63cf8c57ba5a7c3019c344ae7192d12f683fb0b5fc03b21bc6d1a377977257"
        );
    }

    #[test]
    fn names_and_copies() {
        for bad in ["SHA3_256", "BLAKE2B", "sha_256", " sha256", ""] {
            assert_eq!(
                Hasher::new(bad).err(),
                Some(Error::UnsupportedHash(format!(
                    "unsupported hash type {bad}"
                )))
            );
        }
        let mut a = Hasher::new("sha256").unwrap();
        a.update(b"hello world\n");
        let mut b = a.clone();
        b.update(b"more");
        assert_eq!(
            a.hexdigest(None).unwrap(),
            "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
        );
        assert_eq!(
            b.hexdigest(None).unwrap(),
            "ddb37ca8c183723d6afa9b18b7e6dcd4f142c237c67871b17b80fffb01037996"
        );
        assert!(matches!(
            Hasher::new("shake_256").unwrap().hexdigest(None),
            Err(Error::Type(_))
        ));
    }
}
