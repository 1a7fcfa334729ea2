//! A model set on disk (API.md section 6): `manifest.json` plus one artifact per model.
//!
//! The manifest names each artifact with the xxh3 hash of its bytes, and training writes the
//! manifest last (by rename), so a half-written directory is recognised and refused rather
//! than served. Loading checks everything a decision will rely on: the feature schemas can be
//! built, every model has the width of its schema, parameters are in their domains.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::features::FeatureSchema;
use super::response::{ChannelModel, PropensityModel};
use super::segments::SegmentModel;
use super::send_time::{PriorPowers, SendTimeModel};
use super::value::ValueModel;

pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `<trained_at>-<hash>`, e.g. `2026-11-22T09:00:00Z-3f2a`.
    pub version: String,
    pub trained_at: String,
    /// Only events before this time were used; ages are measured to it.
    pub as_of: String,
    /// Start of the held-out period used for the metrics.
    pub holdout_from: String,
    pub events: usize,
    pub customers: usize,
    pub feature_schemas: FeatureSchemas,
    /// Artifact of each model: file name and hash. A model with too little data is absent.
    pub artifacts: BTreeMap<String, Artifact>,
    /// Held-out metrics of each model against its baseline.
    pub metrics: serde_json::Value,
    /// What could not be trained and why, and other remarks for the reader.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSchemas {
    /// Inputs of the propensity models.
    pub response: Option<FeatureSchema>,
    /// Inputs of the channel models.
    pub channel: Option<FeatureSchema>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub file: String,
    /// xxh3-64 of the file's bytes, hex.
    pub xxh3: String,
}

/// The model names used in the manifest.
pub mod names {
    pub const VALUE: &str = "value";
    pub const PROPENSITY: &str = "propensity";
    pub const CHANNEL: &str = "channel";
    pub const SEND_TIME: &str = "send_time";
    pub const SEGMENTS: &str = "segments";
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {message}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("{path} does not match the hash in the manifest (a model set still being written?)")]
    HashMismatch { path: PathBuf },
    #[error("the model set in {dir} cannot be served: {message}")]
    Invalid { dir: PathBuf, message: String },
}

/// A loaded, checked model set.
#[derive(Debug)]
pub struct ModelSet {
    pub manifest: Manifest,
    pub dir: PathBuf,
    pub value: Option<ValueModel>,
    pub propensity: Option<(FeatureSchema, PropensityModel)>,
    pub channel: Option<(FeatureSchema, ChannelModel)>,
    pub send_time: Option<SendTimeModel>,
    /// The send-time model's share of every customer's lifts, made once here.
    pub send_time_priors: Option<PriorPowers>,
    pub segments: Option<SegmentModel>,
    /// Column names of the response and channel schemas, for explanations.
    pub response_names: Vec<String>,
    pub channel_names: Vec<String>,
}

pub fn hash_hex(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse<T: DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<T, ModelError> {
    serde_json::from_slice(bytes).map_err(|e| ModelError::Parse {
        path: path.to_owned(),
        what,
        message: e.to_string(),
    })
}

impl ModelSet {
    /// An empty set: no model at all. Decisions then use priors and say so.
    pub fn empty(dir: &Path) -> Self {
        Self {
            manifest: Manifest {
                version: "none".into(),
                trained_at: String::new(),
                as_of: String::new(),
                holdout_from: String::new(),
                events: 0,
                customers: 0,
                feature_schemas: FeatureSchemas {
                    response: None,
                    channel: None,
                },
                artifacts: BTreeMap::new(),
                metrics: serde_json::Value::Null,
                notes: vec!["no model set loaded".into()],
            },
            dir: dir.to_owned(),
            value: None,
            propensity: None,
            channel: None,
            send_time: None,
            send_time_priors: None,
            segments: None,
            response_names: Vec::new(),
            channel_names: Vec::new(),
        }
    }

    pub fn load(dir: &Path) -> Result<ModelSet, ModelError> {
        let manifest_path = dir.join(MANIFEST);
        let manifest: Manifest = parse(&read(&manifest_path)?, &manifest_path, "model manifest")?;
        let invalid = |message: String| ModelError::Invalid {
            dir: dir.to_owned(),
            message,
        };
        let artifact = |name: &str, what: &'static str| -> Result<Option<Vec<u8>>, ModelError> {
            let Some(a) = manifest.artifacts.get(name) else {
                return Ok(None);
            };
            if a.file.contains('/') || a.file.contains('\\') || a.file.starts_with('.') {
                return Err(invalid(format!(
                    "artifact file name {:?} of {what} is not a plain file name",
                    a.file
                )));
            }
            let path = dir.join(&a.file);
            let bytes = read(&path)?;
            if hash_hex(&bytes) != a.xxh3 {
                return Err(ModelError::HashMismatch { path });
            }
            Ok(Some(bytes))
        };
        let path_of =
            |name: &str| dir.join(manifest.artifacts.get(name).map_or("", |a| a.file.as_str()));
        for (name, schema) in [
            ("response", &manifest.feature_schemas.response),
            ("channel", &manifest.feature_schemas.channel),
        ] {
            if let Some(s) = schema {
                s.check()
                    .map_err(|e| invalid(format!("the {name} feature schema: {e}")))?;
            }
        }

        let value: Option<ValueModel> = artifact(names::VALUE, "value model")?
            .map(|b| parse(&b, &path_of(names::VALUE), "value model"))
            .transpose()?;
        if let Some(v) = &value
            && !v.is_valid()
        {
            return Err(invalid(
                "the value model's parameters are out of their domains".into(),
            ));
        }
        let propensity = match artifact(names::PROPENSITY, "propensity model")? {
            None => None,
            Some(b) => {
                let m: PropensityModel =
                    parse(&b, &path_of(names::PROPENSITY), "propensity model")?;
                let schema = manifest.feature_schemas.response.clone().ok_or_else(|| {
                    invalid("a propensity model without the response feature schema".into())
                })?;
                m.check(schema.width()).map_err(invalid)?;
                Some((schema, m))
            }
        };
        let channel = match artifact(names::CHANNEL, "channel model")? {
            None => None,
            Some(b) => {
                let m: ChannelModel = parse(&b, &path_of(names::CHANNEL), "channel model")?;
                let schema = manifest.feature_schemas.channel.clone().ok_or_else(|| {
                    invalid("a channel model without the channel feature schema".into())
                })?;
                m.check(schema.width()).map_err(invalid)?;
                Some((schema, m))
            }
        };
        let segments: Option<SegmentModel> = artifact(names::SEGMENTS, "segment model")?
            .map(|b| parse(&b, &path_of(names::SEGMENTS), "segment model"))
            .transpose()?;
        if let Some(s) = &segments {
            s.check().map_err(invalid)?;
        }
        let send_time: Option<SendTimeModel> = artifact(names::SEND_TIME, "send-time model")?
            .map(|b| parse(&b, &path_of(names::SEND_TIME), "send-time model"))
            .transpose()?;
        if let Some(s) = &send_time {
            s.check(segments.as_ref().map(|m| m.centres.len()))
                .map_err(invalid)?;
        }
        let response_names = propensity
            .as_ref()
            .map(|(s, _)| s.names())
            .unwrap_or_default();
        let channel_names = channel.as_ref().map(|(s, _)| s.names()).unwrap_or_default();
        Ok(ModelSet {
            manifest,
            dir: dir.to_owned(),
            value,
            propensity,
            channel,
            send_time_priors: send_time.as_ref().map(SendTimeModel::prior_powers),
            send_time,
            segments,
            response_names,
            channel_names,
        })
    }

    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    /// Names of the models present.
    pub fn present(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.value.is_some() {
            v.push(names::VALUE);
        }
        if self.propensity.is_some() {
            v.push(names::PROPENSITY);
        }
        if self.channel.is_some() {
            v.push(names::CHANNEL);
        }
        if self.send_time.is_some() {
            v.push(names::SEND_TIME);
        }
        if self.segments.is_some() {
            v.push(names::SEGMENTS);
        }
        v
    }
}
