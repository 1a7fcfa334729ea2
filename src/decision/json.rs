//! JSON written by hand on the decision path, for the two things every decision writes: the
//! answer (without `explain`) and the decision-log record. serde_json escapes every key and
//! string byte by byte; here keys are constants, ids, channels and times need no escaping
//! (ids are `[A-Za-z0-9._:@-]`), and any other string is escaped only when it has to be.
//! Their tests hold both to what serde writes for the same types.

/// Appends JSON to a buffer.
pub(crate) struct Json<'a>(pub &'a mut Vec<u8>);

impl Json<'_> {
    pub fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    pub fn comma(&mut self, index: usize) {
        if index > 0 {
            self.0.push(b',');
        }
    }

    /// A string: copied between quotes when nothing in it needs escaping.
    pub fn str(&mut self, s: &str) {
        if plain(s) {
            self.plain(s);
        } else {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *self.0, s);
        }
    }

    /// A string known to need no escaping (an identifier, a channel, a time this crate
    /// formatted): copied between quotes without looking.
    pub fn plain(&mut self, s: &str) {
        debug_assert!(plain(s), "{s:?} needs escaping");
        self.0.push(b'"');
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(b'"');
    }

    /// A number as serde_json writes it: shortest round-trip form, `null` when not finite.
    pub fn f64(&mut self, x: f64) {
        self.number(x, x.is_finite());
    }

    /// A number to single precision: the shortest form that reads back as the same `f32`.
    pub fn f32(&mut self, x: f64) {
        let x = x as f32;
        self.number(x, x.is_finite());
    }

    fn number<F: zmij::Float>(&mut self, x: F, finite: bool) {
        if finite {
            self.raw(zmij::Buffer::new().format_finite(x).as_bytes());
        } else {
            self.raw(b"null");
        }
    }

    pub fn usize(&mut self, n: usize) {
        self.raw(itoa::Buffer::new().format(n).as_bytes());
    }

    /// A candidate or an action as the decision log writes it, the array `[offer_id,
    /// channel, send_after_s, propensity, value, priority, probability]`
    /// ([`ScoredRecord`](super::log::ScoredRecord)): the three scores to single precision,
    /// the probability in full.
    pub fn scored_array(
        &mut self,
        offer_id: &str,
        channel: crate::profile::Channel,
        send_after_s: i64,
        [propensity, value, priority, probability]: [f64; 4],
    ) {
        self.raw(b"[");
        self.plain(offer_id);
        self.raw(b",");
        self.plain(channel.as_str());
        self.raw(b",");
        self.raw(itoa::Buffer::new().format(send_after_s).as_bytes());
        self.raw(b",");
        self.f32(propensity);
        self.raw(b",");
        self.f32(value);
        self.raw(b",");
        self.f32(priority);
        self.raw(b",");
        self.f64(probability);
        self.raw(b"]");
    }

    /// A decision's opening fields, shared by the answer and the log record: `{` and
    /// `decision_id`, `customer_id`, `at`, `model_version`, in that order.
    pub fn decision_head(&mut self, d: &super::answer::Decision) {
        self.raw(b"{\"decision_id\":");
        self.plain(d.decision_id.as_str());
        self.raw(b",\"customer_id\":");
        self.plain(d.customer_id.as_str());
        self.raw(b",\"at\":");
        self.plain(&d.at);
        self.raw(b",\"model_version\":");
        self.str(&d.model_version);
        self.raw(b",\"arm\":");
        self.plain(d.arm.as_str());
    }

    /// `"degraded":` and the flag (after a comma).
    pub fn degraded(&mut self, degraded: bool) {
        self.raw(if degraded {
            b",\"degraded\":true"
        } else {
            b",\"degraded\":false"
        });
    }

    /// A decision's actions as a JSON array, each an object with its rank first, as the
    /// answer without explanations has them. Offer ids are a catalog offer's
    /// (`[A-Za-z0-9._:@-]`) and times ones this crate wrote.
    pub fn actions(&mut self, actions: &[super::answer::Action]) {
        self.raw(b"[");
        for (i, a) in actions.iter().enumerate() {
            self.comma(i);
            self.raw(b"{\"rank\":");
            self.usize(a.rank);
            self.raw(b",\"offer_id\":");
            self.plain(a.offer_id.as_str());
            self.raw(b",\"channel\":");
            self.plain(a.channel.as_str());
            self.raw(b",\"send_at\":");
            self.plain(&a.send_at);
            self.raw(b",\"propensity\":");
            self.f64(a.propensity);
            self.raw(b",\"value\":");
            self.f64(a.value);
            self.raw(b",\"priority\":");
            self.f64(a.priority);
            self.raw(b",\"probability\":");
            self.f64(a.probability);
            self.raw(b"}");
        }
        self.raw(b"]");
    }
}

/// Whether a string goes into JSON as it is.
fn plain(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}
