//! Who may call what (API.md section 8): API keys with scopes, and the signed identity a
//! website's public `web` key must carry.
//!
//! Keys are configured only as SHA-256 hashes (`[[auth.keys]] name, sha256, scopes`); a
//! presented key is hashed and compared with every configured hash in constant time
//! (`subtle`), and neither the key nor its hash ever appears in a log or an error. A missing
//! or unknown key is `401`, a key without the scope a route needs `403`. With no keys the
//! service is open, which it allows only on a loopback address unless
//! `auth.allow_anonymous = true` ([`AuthSettings::check_bind`]).
//!
//! A `web` key ships in a page, so it is public: it may only ask for decisions on the `web`
//! and `app` touchpoints and send `interaction` and `response` events, for the customer a
//! site's backend signed: `X-Touchpoint-Identity: CUSTOMER_ID.EXPIRY_UNIX.HEX(HMAC-SHA256(
//! web.identity_secret, "CUSTOMER_ID.EXPIRY_UNIX"))` (verified with `ring`'s constant-time
//! HMAC check).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// A permission a key carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "decisions")]
    Decisions,
    #[serde(rename = "events")]
    Events,
    #[serde(rename = "customers:read")]
    CustomersRead,
    #[serde(rename = "customers:erase")]
    CustomersErase,
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "web")]
    Web,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::Decisions,
        Scope::Events,
        Scope::CustomersRead,
        Scope::CustomersErase,
        Scope::Admin,
        Scope::Web,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Decisions => "decisions",
            Scope::Events => "events",
            Scope::CustomersRead => "customers:read",
            Scope::CustomersErase => "customers:erase",
            Scope::Admin => "admin",
            Scope::Web => "web",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// `[[auth.keys]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub name: String,
    /// Hex of the SHA-256 of the key.
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

/// `[auth]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub keys: Vec<KeySettings>,
    /// Serve without keys on a non-loopback address (not advised).
    pub allow_anonymous: bool,
}

/// `[web]`: what a website's browser may do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// The secret a site's backend signs identities with (`X-Touchpoint-Identity`); empty:
    /// `web` keys cannot be used.
    pub identity_secret: String,
    /// Origins (`https://shop.example`) whose pages may call the service from a browser.
    pub allowed_origins: Vec<String>,
}

impl std::fmt::Display for KeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hash: a name is enough to say which key.
        write!(f, "key {:?}", self.name)
    }
}

impl AuthSettings {
    pub fn check(&self) -> Result<(), String> {
        for k in &self.keys {
            if k.name.is_empty() {
                return Err("auth.keys: every key needs a name".into());
            }
            if decode_hash(&k.sha256).is_none() {
                return Err(format!(
                    "auth.keys: {k}: sha256 must be 64 hexadecimal characters (the SHA-256 of the key)"
                ));
            }
            if k.scopes.is_empty() {
                return Err(format!("auth.keys: {k} has no scopes"));
            }
        }
        Ok(())
    }

    /// With no keys the service is open: only on a loopback address, unless allowed.
    pub fn check_bind(&self, addr: &std::net::SocketAddr) -> Result<(), String> {
        if self.keys.is_empty() && !self.allow_anonymous && !addr.ip().is_loopback() {
            return Err(format!(
                "no API keys are configured, and {addr} is not a loopback address: add \
                 [[auth.keys]] (touchpoint keys new) or set auth.allow_anonymous = true"
            ));
        }
        Ok(())
    }
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The caller a request's key names.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: Arc<str>,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// A `web` key only: what a browser may do, and no more.
    pub fn is_web_only(&self) -> bool {
        self.has(Scope::Web) && !self.has(Scope::Decisions) && !self.has(Scope::Events)
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No key, or one that is not configured: `401`.
    Unauthenticated(&'static str),
    /// The key lacks what the route needs: `403`, with the field at fault if any.
    Forbidden {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
}

/// The configured keys, ready to compare.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    keys: Vec<([u8; 32], Principal)>,
    identity_secret: Option<ring::hmac::Key>,
}

impl Auth {
    pub fn new(settings: &AuthSettings, web: &WebSettings) -> Self {
        Self {
            keys: settings
                .keys
                .iter()
                .filter_map(|k| {
                    Some((
                        decode_hash(&k.sha256)?,
                        Principal {
                            name: k.name.as_str().into(),
                            scopes: k.scopes.clone(),
                        },
                    ))
                })
                .collect(),
            identity_secret: (!web.identity_secret.is_empty()).then(|| {
                ring::hmac::Key::new(ring::hmac::HMAC_SHA256, web.identity_secret.as_bytes())
            }),
        }
    }

    /// No keys: every caller may do everything (on loopback, or when allowed).
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The principal of an `Authorization` header's value.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<Principal, Refusal> {
        let Some(value) = header else {
            return Err(Refusal::Unauthenticated(
                "an API key is needed: Authorization: Bearer KEY",
            ));
        };
        let key = value
            .strip_prefix(b"Bearer ")
            .map(|k| k.trim_ascii())
            .filter(|k| !k.is_empty())
            .ok_or(Refusal::Unauthenticated(
                "the Authorization header must be: Bearer KEY",
            ))?;
        let hash = sha256(key);
        // Compare with every key, whichever matches, so the time does not say which.
        let mut found: Option<&Principal> = None;
        for (h, p) in &self.keys {
            if bool::from(h.ct_eq(&hash)) {
                found = Some(p);
            }
        }
        found
            .cloned()
            .ok_or(Refusal::Unauthenticated("the API key is not known"))
    }

    /// The customer a signed identity names, if the signature is good and not expired at
    /// `now`.
    pub fn verify_identity(&self, header: Option<&[u8]>, now: i64) -> Result<String, Refusal> {
        let forbidden = |code, message: &str| Refusal::Forbidden {
            code,
            message: message.to_owned(),
            field: Some("X-Touchpoint-Identity"),
        };
        let Some(secret) = &self.identity_secret else {
            return Err(forbidden(
                "web_identity_not_configured",
                "web keys need web.identity_secret to be configured",
            ));
        };
        let value = header
            .and_then(|h| std::str::from_utf8(h).ok())
            .ok_or_else(|| {
                forbidden(
                    "identity_missing",
                    "a web key needs X-Touchpoint-Identity: CUSTOMER_ID.EXPIRY.SIGNATURE",
                )
            })?;
        let mut parts = value.rsplitn(3, '.');
        let (Some(signature), Some(expiry), Some(customer)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(forbidden(
                "identity_malformed",
                "X-Touchpoint-Identity is CUSTOMER_ID.EXPIRY_UNIX.HEX_SIGNATURE",
            ));
        };
        let tag = hex_bytes(signature).ok_or_else(|| {
            forbidden("identity_malformed", "the identity's signature is not hex")
        })?;
        let signed = &value[..customer.len() + 1 + expiry.len()];
        ring::hmac::verify(secret, signed.as_bytes(), &tag).map_err(|_| {
            forbidden(
                "identity_bad_signature",
                "the identity's signature is wrong",
            )
        })?;
        let expiry: i64 = expiry.parse().map_err(|_| {
            forbidden(
                "identity_malformed",
                "the identity's expiry is not a number",
            )
        })?;
        if expiry <= now {
            return Err(forbidden("identity_expired", "the identity has expired"));
        }
        Ok(customer.to_owned())
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || hex.len() > 256 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// A new random key (256 bits, URL-safe) and the SHA-256 hex the config stores.
pub fn new_key() -> (String, String) {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    let key = format!("tp_{}", to_hex(&bytes));
    let hash = to_hex(&sha256(key.as_bytes()));
    (key, hash)
}

/// The signed identity for `customer` until `expiry` (what a site's backend computes).
pub fn sign_identity(secret: &str, customer: &str, expiry: i64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let payload = format!("{customer}.{expiry}");
    let tag = ring::hmac::sign(&key, payload.as_bytes());
    format!("{payload}.{}", to_hex(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> (Auth, String) {
        let (key, hash) = new_key();
        let settings = AuthSettings {
            keys: vec![KeySettings {
                name: "crm".into(),
                sha256: hash,
                scopes: vec![Scope::Decisions],
            }],
            allow_anonymous: false,
        };
        settings.check().unwrap();
        let web = WebSettings {
            identity_secret: "s3cret".into(),
            allowed_origins: vec![],
        };
        (Auth::new(&settings, &web), key)
    }

    #[test]
    fn a_key_is_known_by_its_hash_only() {
        let (auth, key) = auth();
        let p = auth
            .authenticate(Some(format!("Bearer {key}").as_bytes()))
            .unwrap();
        assert_eq!(&*p.name, "crm");
        assert!(p.has(Scope::Decisions) && !p.has(Scope::Events));
        for bad in [None, Some(&b"Bearer tp_nope"[..]), Some(&b"Basic abc"[..])] {
            assert!(matches!(
                auth.authenticate(bad),
                Err(Refusal::Unauthenticated(_))
            ));
        }
    }

    /// The SHA-256 of "abc" is the one FIPS 180-2 gives (appendix B.1).
    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            to_hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// HMAC-SHA256 test case 2 of RFC 4231 (key "Jefe"), through the identity's own
    /// construction: the signed text is everything before the last dot.
    #[test]
    fn identities_are_signed_with_the_standard_hmac() {
        let s = sign_identity("Jefe", "what do ya want for nothing", 0);
        assert_eq!(s.rsplit('.').next().unwrap().len(), 64);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        let tag = ring::hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            to_hex(tag.as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn an_identity_is_checked_for_signature_and_expiry() {
        let (auth, _) = auth();
        let good = sign_identity("s3cret", "c.1", 2_000);
        assert_eq!(
            auth.verify_identity(Some(good.as_bytes()), 1_000),
            Ok("c.1".into())
        );
        let code = |r: Result<String, Refusal>| match r {
            Err(Refusal::Forbidden { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code(auth.verify_identity(Some(good.as_bytes()), 2_000)),
            "identity_expired"
        );
        let forged = sign_identity("other", "c.1", 2_000);
        assert_eq!(
            code(auth.verify_identity(Some(forged.as_bytes()), 1_000)),
            "identity_bad_signature"
        );
        let moved = good.replacen("c.1", "c.2", 1);
        assert_eq!(
            code(auth.verify_identity(Some(moved.as_bytes()), 1_000)),
            "identity_bad_signature"
        );
        assert_eq!(code(auth.verify_identity(None, 1_000)), "identity_missing");
    }
}
