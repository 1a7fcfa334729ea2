//! Offer eligibility conditions: a small, safe expression language.
//!
//! Marketers attach conditions such as
//! `attr.age_band in ["25-34", "35-44"] and value.clv_365d >= 100` to offers.
//! The language has no loops, no function calls besides `has`, no arithmetic
//! and a bounded size, so a condition can neither run away nor reach outside
//! the facts it is given.
//!
//! Conditions are [`compile`]d once, when the catalog loads: fields are
//! resolved through a [`FieldCatalog`] into [`FieldSlot`]s and typed fields are
//! type-checked, so mistakes surface as a [`ConditionError`] with a column and
//! a readable sentence. [`Condition::evaluate`] then runs on the decision hot
//! path: it reads values by slot through [`Facts`], never by name, and never
//! allocates.
//!
//! # Grammar (EBNF)
//!
//! ```text
//! condition  = [ or_expr ] ;            (* empty or blank source: always eligible *)
//! or_expr    = and_expr , { "or" , and_expr } ;
//! and_expr   = not_expr , { "and" , not_expr } ;
//! not_expr   = "not" , not_expr | primary ;
//! primary    = "(" , or_expr , ")"
//!            | "has" , "(" , field , ")"
//!            | comparison ;
//! comparison = field , ( compare_op , literal | [ "not" ] , "in" , list ) ;
//! compare_op = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
//! list       = "[" , literal , { "," , literal } , "]" ;   (* 1..=256 items, one type *)
//! literal    = string | number | "true" | "false" ;
//! field      = head , { "." , segment } ;
//! head       = ( letter | "_" ) , { letter | digit | "_" } ;
//! segment    = ( letter | digit | "_" ) , { letter | digit | "_" } ;
//! number     = [ "-" ] , digit , { digit } , [ "." , digit , { digit } ] ;
//! string     = '"' , { char - ( '"' | "\" ) | '\"' | "\\" } , '"' ;
//! ```
//!
//! Precedence from loosest to tightest: `or`, `and`, `not`, comparison, so
//! `not a == 1 or b == 2 and c == 3` means `(not (a == 1)) or ((b == 2) and (c == 3))`.
//! Keywords (`and or not in has true false`) are lowercase; letters are ASCII
//! and whitespace is ASCII whitespace. A field is always on the left of a
//! comparison and the right side is always a literal: comparing two fields is
//! not part of the language.
//!
//! Limits: at most [`MAX_SOURCE_CHARS`] characters, at most [`MAX_DEPTH`]
//! nested parentheses and `not`s together, at most [`MAX_LIST_ITEMS`] list items.
//!
//! # Types
//!
//! The catalog gives every field a [`FieldType`]. For `Number`, `Text` and
//! `Bool` fields, a literal of another type is a compile error. `Any` fields
//! (free attributes `attr.*`, request context `ctx.*`) accept literals of any
//! type and are checked when evaluated. `true`/`false` only support `==`, `!=`,
//! `in` and `not in`. Lists must hold literals of a single type.
//!
//! # Missing values and run-time type mismatches
//!
//! When [`Facts::get`] returns `None`, or returns a value whose type differs
//! from the literal's (possible for `Any` fields, or for a fact provider that
//! disagrees with its catalog):
//!
//! | operator                  | result  |
//! |---------------------------|---------|
//! | `==` `<` `<=` `>` `>=` `in` | `false` |
//! | `!=` `not in`             | `true`  |
//! | `has(field)`              | `false` (it is `true` for any present value) |
//!
//! `not` is plain logical negation of its operand, so `not (x < 3)` is `true`
//! for a missing `x` while `x >= 3` is `false`.
//!
//! Numbers compare as `f64` with exact equality (`0.1 + 0.2 != 0.3`); `-0`
//! equals `0`; in comparisons and lists a NaN fact behaves like a missing
//! value. Text comparisons are case-sensitive; `<`, `<=`, `>`, `>=` on text
//! compare lexicographically by Unicode scalar value (UTF-8 byte order), so
//! `"B" < "a"` and `"10" < "9"`.

// A parser matches the few tokens it expects where it is; every other token is a syntax
// error, so listing them all would only hide the ones that matter.
#![allow(clippy::wildcard_enum_match_arm)]

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// Longest accepted source, in characters.
pub const MAX_SOURCE_CHARS: usize = 2_000;
/// Deepest accepted nesting of parentheses and `not` together.
pub const MAX_DEPTH: usize = 32;
/// Most items accepted in one `in [...]` list.
pub const MAX_LIST_ITEMS: usize = 256;

/// Up to this many items a linear scan beats binary search: the items share a
/// cache line or two and the scan has no unpredictable halving branches.
const LINEAR_SCAN_MAX: usize = 8;
/// Characters of source quoted in syntax errors: enough to recognise the spot.
const EXCERPT_CHARS: usize = 20;
/// Known fields quoted in an unknown-field message; long catalogs would drown it.
const LISTED_FIELDS: usize = 8;

/// Type of a field, as declared by the [`FieldCatalog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Number,
    Text,
    Bool,
    /// Type known only at run time, e.g. free attributes or request context.
    Any,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldType::Number => "number",
            FieldType::Text => "text",
            FieldType::Bool => "bool",
            FieldType::Any => "any",
        })
    }
}

/// Opaque index the fact provider uses to find a field's value without hashing its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldSlot(pub u32);

/// Compile-time knowledge of which fields exist.
pub trait FieldCatalog {
    /// Resolves a dotted field name to a slot the evaluator can read fast, and
    /// its type; `None` = unknown field. Only called by [`compile`].
    fn resolve(&self, path: &str) -> Option<(FieldSlot, FieldType)>;

    /// Field names or patterns shown to authors when they use an unknown field,
    /// most useful first, e.g. `["attr.<name>", "ctx.<name>", "value.p_alive"]`.
    /// Entries without `<` are also candidates for "did you mean".
    fn known_fields(&self) -> Vec<String>;
}

/// A value read during evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fact<'a> {
    Number(f64),
    Text(&'a str),
    Bool(bool),
}

/// Run-time values, looked up by slot. Called on the hot path, so `get` should
/// be an index or a small probe, not a string lookup.
pub trait Facts {
    /// The value in `slot`, or `None` when the subject has no such value.
    fn get(&self, slot: FieldSlot) -> Option<Fact<'_>>;
}

impl<T: Facts + ?Sized> Facts for &T {
    fn get(&self, slot: FieldSlot) -> Option<Fact<'_>> {
        (**self).get(slot)
    }
}

/// Which limit a condition broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    SourceLength,
    NestingDepth,
    ListItems,
}

/// Why a condition was rejected. Columns are 1-based and count characters from
/// the start of the source (a newline counts as one character).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionError {
    #[error("syntax error at column {column} {}: {message}", near(.excerpt))]
    Syntax {
        column: usize,
        /// Source text starting at the error; empty at the end of the condition.
        excerpt: String,
        message: String,
    },
    #[error(
        "unknown field \"{field}\" at column {column}{}",
        unknown_field_hint(.suggestion, .known)
    )]
    UnknownField {
        field: String,
        column: usize,
        /// Closest known field name, when one is close enough to be a typo.
        suggestion: Option<String>,
        /// What [`FieldCatalog::known_fields`] returned.
        known: Vec<String>,
    },
    #[error(
        "type mismatch at column {column}: field \"{field}\" holds {expected} values but is compared with {found}"
    )]
    TypeMismatch {
        field: String,
        column: usize,
        expected: FieldType,
        /// The offending literal, e.g. `text "x"` or `a list of numbers`.
        found: String,
    },
    #[error(
        "operator \"{operator}\" at column {column} cannot order true/false values of field \"{field}\": use == or !="
    )]
    UnorderedComparison {
        field: String,
        column: usize,
        operator: String,
    },
    #[error("{} at column {column}", limit_sentence(.kind, .max))]
    Limit {
        kind: LimitKind,
        max: usize,
        column: usize,
    },
}

impl ConditionError {
    /// 1-based character column the error points at.
    pub fn column(&self) -> usize {
        match self {
            ConditionError::Syntax { column, .. }
            | ConditionError::UnknownField { column, .. }
            | ConditionError::TypeMismatch { column, .. }
            | ConditionError::UnorderedComparison { column, .. }
            | ConditionError::Limit { column, .. } => *column,
        }
    }
}

fn near(excerpt: &str) -> String {
    if excerpt.is_empty() {
        "(end of condition)".to_owned()
    } else {
        format!("near {excerpt:?}")
    }
}

fn unknown_field_hint(suggestion: &Option<String>, known: &[String]) -> String {
    let mut hint = String::new();
    if let Some(best) = suggestion {
        hint.push_str(&format!(": did you mean \"{best}\"?"));
    }
    if !known.is_empty() {
        hint.push_str(if suggestion.is_some() {
            " Fields look like "
        } else {
            ": fields look like "
        });
        hint.push_str(&known[..known.len().min(LISTED_FIELDS)].join(", "));
        if known.len() > LISTED_FIELDS {
            hint.push_str(", ...");
        }
    }
    hint
}

fn limit_sentence(kind: &LimitKind, max: &usize) -> String {
    match kind {
        LimitKind::SourceLength => format!("condition is longer than {max} characters"),
        LimitKind::NestingDepth => {
            format!("condition nests parentheses and \"not\" deeper than {max} levels")
        }
        LimitKind::ListItems => format!("list has more than {max} items"),
    }
}

/// A compiled eligibility condition. Cheap to evaluate, immutable, `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Condition {
    source: Box<str>,
    /// `None` for the blank condition, which always holds.
    root: Option<u32>,
    /// Children always precede their parent, so the tree has no cycles.
    nodes: Box<[Node]>,
    /// Child indices of `And`/`Or` nodes, which refer to ranges of it.
    kids: Box<[u32]>,
    fields: Box<[FieldSlot]>,
}

impl Condition {
    /// Whether the facts satisfy the condition. Never allocates and never
    /// panics; see the module docs for missing values.
    pub fn evaluate<F: Facts + ?Sized>(&self, facts: &F) -> bool {
        self.root.is_none_or(|root| self.eval(root, facts))
    }

    /// Each slot the condition reads, once, in order of first appearance.
    pub fn fields(&self) -> impl Iterator<Item = FieldSlot> {
        self.fields.iter().copied()
    }

    /// The source text exactly as given to [`compile`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True for the blank condition, letting callers skip evaluation entirely.
    pub fn is_always(&self) -> bool {
        self.root.is_none()
    }

    fn eval<F: Facts + ?Sized>(&self, at: u32, facts: &F) -> bool {
        match &self.nodes[at as usize] {
            Node::And { first, len } => self
                .children(*first, *len)
                .iter()
                .all(|&kid| self.eval(kid, facts)),
            Node::Or { first, len } => self
                .children(*first, *len)
                .iter()
                .any(|&kid| self.eval(kid, facts)),
            Node::Not(kid) => !self.eval(*kid, facts),
            Node::Has(slot) => facts.get(*slot).is_some(),
            Node::Number { slot, op, rhs } => match facts.get(*slot) {
                // NaN has no ordering and so falls back to the missing-value result.
                Some(Fact::Number(x)) => {
                    x.partial_cmp(rhs).map_or(op.when_absent(), |o| op.holds(o))
                }
                _ => op.when_absent(),
            },
            Node::Text { slot, op, rhs } => match facts.get(*slot) {
                Some(Fact::Text(s)) => op.holds(str::cmp(s, rhs)),
                _ => op.when_absent(),
            },
            Node::Bool { slot, op, rhs } => match facts.get(*slot) {
                Some(Fact::Bool(b)) => op.holds(b.cmp(rhs)),
                _ => op.when_absent(),
            },
            Node::InNumbers {
                slot,
                negated,
                items,
            } => {
                let found =
                    matches!(facts.get(*slot), Some(Fact::Number(x)) if contains_number(items, x));
                found != *negated
            }
            Node::InTexts {
                slot,
                negated,
                items,
            } => {
                let found =
                    matches!(facts.get(*slot), Some(Fact::Text(s)) if contains_text(items, s));
                found != *negated
            }
            Node::InBools {
                slot,
                negated,
                has_true,
                has_false,
            } => {
                let found = match facts.get(*slot) {
                    Some(Fact::Bool(true)) => *has_true,
                    Some(Fact::Bool(false)) => *has_false,
                    _ => false,
                };
                found != *negated
            }
        }
    }

    fn children(&self, first: u32, len: u32) -> &[u32] {
        &self.kids[first as usize..(first + len) as usize]
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Serialized as its source text; deserializing needs a catalog, so go through [`compile`].
impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// Lists longer than [`LINEAR_SCAN_MAX`] are sorted by `total_cmp` and deduplicated.
fn contains_number(items: &[f64], x: f64) -> bool {
    if items.len() <= LINEAR_SCAN_MAX {
        items.contains(&x)
    } else {
        // total_cmp orders -0 before 0 while == treats them as equal; literals
        // are stored as +0, and adding +0 turns a -0 fact into +0 as well.
        let x = x + 0.0;
        items.binary_search_by(|item| item.total_cmp(&x)).is_ok()
    }
}

/// Lists longer than [`LINEAR_SCAN_MAX`] are sorted and deduplicated.
fn contains_text(items: &[Box<str>], s: &str) -> bool {
    if items.len() <= LINEAR_SCAN_MAX {
        items.iter().any(|item| **item == *s)
    } else {
        items.binary_search_by(|item| str::cmp(item, s)).is_ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        }
    }

    /// Result when there is no comparable value: only "differs from" holds.
    fn when_absent(self) -> bool {
        self == CmpOp::Ne
    }

    fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// One operation of the compiled condition. Comparisons carry their literal
/// already converted, so evaluation only reads the fact and compares.
#[derive(Clone, Debug)]
enum Node {
    And {
        first: u32,
        len: u32,
    },
    Or {
        first: u32,
        len: u32,
    },
    Not(u32),
    Has(FieldSlot),
    Number {
        slot: FieldSlot,
        op: CmpOp,
        rhs: f64,
    },
    Text {
        slot: FieldSlot,
        op: CmpOp,
        rhs: Box<str>,
    },
    Bool {
        slot: FieldSlot,
        op: CmpOp,
        rhs: bool,
    },
    InNumbers {
        slot: FieldSlot,
        negated: bool,
        items: Box<[f64]>,
    },
    InTexts {
        slot: FieldSlot,
        negated: bool,
        items: Box<[Box<str>]>,
    },
    InBools {
        slot: FieldSlot,
        negated: bool,
        has_true: bool,
        has_false: bool,
    },
}

/// Compiles `source` against `fields`.
///
/// An empty or whitespace-only source compiles to a condition that is always
/// true, so offers without a condition need no special case.
pub fn compile<C: FieldCatalog + ?Sized>(
    source: &str,
    fields: &C,
) -> Result<Condition, ConditionError> {
    // The byte length bounds the character count, so most sources skip the count.
    if source.len() > MAX_SOURCE_CHARS && source.chars().count() > MAX_SOURCE_CHARS {
        return Err(ConditionError::Limit {
            kind: LimitKind::SourceLength,
            max: MAX_SOURCE_CHARS,
            column: MAX_SOURCE_CHARS + 1,
        });
    }
    let mut lexer = Lexer {
        src: source,
        pos: 0,
    };
    let tok = lexer.next()?;
    let mut parser = Parser {
        src: source,
        lexer,
        tok,
        catalog: fields,
        nodes: Vec::new(),
        kids: Vec::new(),
        fields: Vec::new(),
        depth: 0,
    };
    let root = parser.condition()?;
    Ok(Condition {
        source: source.into(),
        root,
        nodes: parser.nodes.into_boxed_slice(),
        kids: parser.kids.into_boxed_slice(),
        fields: parser.fields.into_boxed_slice(),
    })
}

const KEYWORDS: [&str; 7] = ["and", "or", "not", "in", "has", "true", "false"];

/// The lowercase keyword `word` spells in another case, if any.
fn miscased_keyword(word: &str) -> Option<&'static str> {
    KEYWORDS
        .into_iter()
        .find(|kw| *kw != word && kw.eq_ignore_ascii_case(word))
}

/// 1-based character column of a byte offset.
fn column_at(src: &str, offset: usize) -> usize {
    src.get(..offset)
        .map_or(offset, |before| before.chars().count())
        + 1
}

fn syntax(src: &str, offset: usize, message: impl Into<String>) -> ConditionError {
    ConditionError::Syntax {
        column: column_at(src, offset),
        excerpt: src
            .get(offset..)
            .unwrap_or("")
            .chars()
            .take(EXCERPT_CHARS)
            .collect(),
        message: message.into(),
    }
}

#[derive(Debug)]
enum Tok<'s> {
    Ident(&'s str),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Cmp(CmpOp),
    And,
    Or,
    Not,
    In,
    Has,
    True,
    False,
    Eof,
}

#[derive(Debug)]
struct Token<'s> {
    kind: Tok<'s>,
    /// Byte offset of the token's first character.
    start: usize,
}

/// Produces tokens on demand so the first error in reading order is the one reported.
struct Lexer<'s> {
    src: &'s str,
    /// Always on a character boundary: only ASCII bytes or whole strings are skipped.
    pos: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'s> Lexer<'s> {
    fn peek_byte(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    fn next(&mut self) -> Result<Token<'s>, ConditionError> {
        while self
            .peek_byte(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(b) = self.peek_byte(start) else {
            return Ok(Token {
                kind: Tok::Eof,
                start,
            });
        };
        let followed_by_eq = self.peek_byte(start + 1) == Some(b'=');
        let (kind, len) = match b {
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b',' => (Tok::Comma, 1),
            b'=' if followed_by_eq => (Tok::Cmp(CmpOp::Eq), 2),
            b'=' => return Err(syntax(self.src, start, "use == to test equality")),
            b'!' if followed_by_eq => (Tok::Cmp(CmpOp::Ne), 2),
            b'!' => {
                return Err(syntax(
                    self.src,
                    start,
                    "use != to test inequality, or \"not\" to negate",
                ));
            }
            b'<' if followed_by_eq => (Tok::Cmp(CmpOp::Le), 2),
            b'<' => (Tok::Cmp(CmpOp::Lt), 1),
            b'>' if followed_by_eq => (Tok::Cmp(CmpOp::Ge), 2),
            b'>' => (Tok::Cmp(CmpOp::Gt), 1),
            b'"' => return self.string(start),
            b'-' | b'0'..=b'9' => return self.number(start),
            b if b.is_ascii_alphabetic() || b == b'_' => return self.word(start),
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                return Err(syntax(
                    self.src,
                    start,
                    format!("unexpected character {ch:?}"),
                ));
            }
        };
        self.pos = start + len;
        Ok(Token { kind, start })
    }

    fn string(&mut self, start: usize) -> Result<Token<'s>, ConditionError> {
        let mut text = String::new();
        let mut at = start + 1;
        // Unescaped text is copied in runs rather than per character.
        let mut run = at;
        loop {
            match self.peek_byte(at) {
                None => {
                    return Err(syntax(
                        self.src,
                        start,
                        "text value is missing its closing double quote",
                    ));
                }
                Some(b'"') => {
                    text.push_str(&self.src[run..at]);
                    self.pos = at + 1;
                    return Ok(Token {
                        kind: Tok::Str(text),
                        start,
                    });
                }
                Some(b'\\') => {
                    text.push_str(&self.src[run..at]);
                    match self.peek_byte(at + 1) {
                        Some(b'"') => text.push('"'),
                        Some(b'\\') => text.push('\\'),
                        _ => {
                            return Err(syntax(
                                self.src,
                                at,
                                r#"unsupported escape in text: only \" and \\ are allowed"#,
                            ));
                        }
                    }
                    at += 2;
                    run = at;
                }
                // Quote and backslash never occur inside multi-byte UTF-8
                // sequences, so stepping by bytes keeps `run..at` on char boundaries.
                Some(_) => at += 1,
            }
        }
    }

    fn number(&mut self, start: usize) -> Result<Token<'s>, ConditionError> {
        let is_digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
        let mut at = start;
        if self.peek_byte(at) == Some(b'-') {
            at += 1;
            if !is_digit(self.peek_byte(at)) {
                return Err(syntax(
                    self.src,
                    start,
                    "\"-\" must be directly followed by the digits of a number",
                ));
            }
        }
        while is_digit(self.peek_byte(at)) {
            at += 1;
        }
        if self.peek_byte(at) == Some(b'.') {
            at += 1;
            if !is_digit(self.peek_byte(at)) {
                return Err(syntax(
                    self.src,
                    start,
                    "a number needs digits after its decimal point",
                ));
            }
            while is_digit(self.peek_byte(at)) {
                at += 1;
            }
        }
        if self
            .peek_byte(at)
            .is_some_and(|b| is_word_byte(b) || b == b'.')
        {
            return Err(syntax(
                self.src,
                start,
                "malformed number: only digits with an optional decimal part are allowed",
            ));
        }
        let value: f64 = self.src[start..at]
            .parse()
            .map_err(|_| syntax(self.src, start, "malformed number"))?;
        if !value.is_finite() {
            return Err(syntax(self.src, start, "number is too large"));
        }
        self.pos = at;
        Ok(Token {
            // Storing -0 as +0 lets sorted lists use total_cmp, see contains_number.
            kind: Tok::Num(value + 0.0),
            start,
        })
    }

    fn word(&mut self, start: usize) -> Result<Token<'s>, ConditionError> {
        let mut at = start;
        loop {
            while self.peek_byte(at).is_some_and(is_word_byte) {
                at += 1;
            }
            if self.peek_byte(at) != Some(b'.') {
                break;
            }
            if !self.peek_byte(at + 1).is_some_and(is_word_byte) {
                return Err(syntax(
                    self.src,
                    at,
                    "a field name needs a name part after each \".\"",
                ));
            }
            at += 1;
        }
        let word = &self.src[start..at];
        let kind = match word {
            "and" => Tok::And,
            "or" => Tok::Or,
            "not" => Tok::Not,
            "in" => Tok::In,
            "has" => Tok::Has,
            "true" => Tok::True,
            "false" => Tok::False,
            _ => Tok::Ident(word),
        };
        self.pos = at;
        Ok(Token { kind, start })
    }
}

enum Literal {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl Literal {
    fn ty(&self) -> FieldType {
        match self {
            Literal::Number(_) => FieldType::Number,
            Literal::Text(_) => FieldType::Text,
            Literal::Bool(_) => FieldType::Bool,
        }
    }

    fn describe(&self) -> String {
        match self {
            Literal::Number(n) => format!("the number {n}"),
            Literal::Text(s) => format!("text {s:?}"),
            Literal::Bool(b) => format!("the bool {b}"),
        }
    }
}

fn describe_list(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Number => "a list of numbers",
        FieldType::Text => "a list of text",
        FieldType::Bool => "a list of bools",
        FieldType::Any => "a list",
    }
}

struct FieldRef<'s> {
    slot: FieldSlot,
    ty: FieldType,
    path: &'s str,
}

/// Recursive descent parser that emits compiled nodes directly.
struct Parser<'s, 'c, C: FieldCatalog + ?Sized> {
    src: &'s str,
    lexer: Lexer<'s>,
    /// One token of lookahead.
    tok: Token<'s>,
    catalog: &'c C,
    nodes: Vec<Node>,
    kids: Vec<u32>,
    fields: Vec<FieldSlot>,
    /// Current nesting of parentheses and `not`; bounds recursion in both the
    /// parser and the evaluator, since `and`/`or` chains are flat.
    depth: usize,
}

impl<'s, C: FieldCatalog + ?Sized> Parser<'s, '_, C> {
    fn advance(&mut self) -> Result<Token<'s>, ConditionError> {
        let next = self.lexer.next()?;
        Ok(std::mem::replace(&mut self.tok, next))
    }

    fn unexpected(&self, expected: &str) -> ConditionError {
        let keyword = match self.tok.kind {
            Tok::Ident(word) => miscased_keyword(word),
            _ => None,
        };
        let message = match keyword {
            Some(keyword) => format!("{expected}; keywords are lowercase, write \"{keyword}\""),
            None => expected.to_owned(),
        };
        syntax(self.src, self.tok.start, message)
    }

    fn push(&mut self, node: Node) -> u32 {
        // Fits: a node needs at least one source character and sources are short.
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    fn enter(&mut self, at: usize) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ConditionError::Limit {
                kind: LimitKind::NestingDepth,
                max: MAX_DEPTH,
                column: column_at(self.src, at),
            });
        }
        Ok(())
    }

    fn condition(&mut self) -> Result<Option<u32>, ConditionError> {
        if matches!(self.tok.kind, Tok::Eof) {
            return Ok(None);
        }
        let root = self.or_expr()?;
        match self.tok.kind {
            Tok::Eof => Ok(Some(root)),
            Tok::RParen => Err(self.unexpected("found \")\" without a matching \"(\"")),
            _ => Err(self.unexpected("expected \"and\", \"or\" or the end of the condition")),
        }
    }

    fn or_expr(&mut self) -> Result<u32, ConditionError> {
        let first = self.and_expr()?;
        if !matches!(self.tok.kind, Tok::Or) {
            return Ok(first);
        }
        let mut operands = vec![first];
        while matches!(self.tok.kind, Tok::Or) {
            self.advance()?;
            operands.push(self.and_expr()?);
        }
        Ok(self.group(operands, false))
    }

    fn and_expr(&mut self) -> Result<u32, ConditionError> {
        let first = self.not_expr()?;
        if !matches!(self.tok.kind, Tok::And) {
            return Ok(first);
        }
        let mut operands = vec![first];
        while matches!(self.tok.kind, Tok::And) {
            self.advance()?;
            operands.push(self.not_expr()?);
        }
        Ok(self.group(operands, true))
    }

    fn group(&mut self, operands: Vec<u32>, is_and: bool) -> u32 {
        let first = self.kids.len() as u32;
        let len = operands.len() as u32;
        self.kids.extend(operands);
        self.push(if is_and {
            Node::And { first, len }
        } else {
            Node::Or { first, len }
        })
    }

    fn not_expr(&mut self) -> Result<u32, ConditionError> {
        if !matches!(self.tok.kind, Tok::Not) {
            return self.primary();
        }
        self.enter(self.tok.start)?;
        self.advance()?;
        let operand = self.not_expr()?;
        self.depth -= 1;
        Ok(self.push(Node::Not(operand)))
    }

    fn primary(&mut self) -> Result<u32, ConditionError> {
        match self.tok.kind {
            Tok::LParen => {
                let open = self.tok.start;
                self.enter(open)?;
                self.advance()?;
                let inner = self.or_expr()?;
                if !matches!(self.tok.kind, Tok::RParen) {
                    return Err(self.unexpected(&format!(
                        "expected \")\" to close the \"(\" at column {}",
                        column_at(self.src, open)
                    )));
                }
                self.advance()?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Has => {
                self.advance()?;
                self.expect_lparen_after("has")?;
                let field = self.field()?;
                if !matches!(self.tok.kind, Tok::RParen) {
                    return Err(self.unexpected("expected \")\" after the field in has(...)"));
                }
                self.advance()?;
                Ok(self.push(Node::Has(field.slot)))
            }
            Tok::Ident(_) => self.comparison(),
            _ => Err(self.unexpected(
                "expected a field, \"not\", \"has(...)\" or \"(\" to start a condition",
            )),
        }
    }

    fn expect_lparen_after(&mut self, what: &str) -> Result<(), ConditionError> {
        if !matches!(self.tok.kind, Tok::LParen) {
            return Err(self.unexpected(&format!("expected \"(\" after \"{what}\"")));
        }
        self.advance()?;
        Ok(())
    }

    fn field(&mut self) -> Result<FieldRef<'s>, ConditionError> {
        let Tok::Ident(path) = self.tok.kind else {
            return Err(self.unexpected("expected a field name such as attr.region"));
        };
        let at = self.tok.start;
        let Some((slot, ty)) = self.catalog.resolve(path) else {
            if miscased_keyword(path).is_some() {
                return Err(self.unexpected("expected a field"));
            }
            let known = self.catalog.known_fields();
            return Err(ConditionError::UnknownField {
                field: path.to_owned(),
                column: column_at(self.src, at),
                suggestion: closest_field(path, &known),
                known,
            });
        };
        if !self.fields.contains(&slot) {
            self.fields.push(slot);
        }
        self.advance()?;
        Ok(FieldRef { slot, ty, path })
    }

    fn comparison(&mut self) -> Result<u32, ConditionError> {
        let field = self.field()?;
        match self.tok.kind {
            Tok::Cmp(op) => {
                let op_at = self.tok.start;
                self.advance()?;
                let (literal, at) = self.literal()?;
                self.compare(field, op, op_at, literal, at)
            }
            Tok::In => {
                self.advance()?;
                self.membership(field, false)
            }
            Tok::Not => {
                self.advance()?;
                if !matches!(self.tok.kind, Tok::In) {
                    return Err(self.unexpected("expected \"in\" after \"not\""));
                }
                self.advance()?;
                self.membership(field, true)
            }
            _ => Err(self.unexpected(&format!(
                "expected ==, !=, <, <=, >, >=, in or not in after field \"{}\"",
                field.path
            ))),
        }
    }

    fn literal(&mut self) -> Result<(Literal, usize), ConditionError> {
        let at = self.tok.start;
        let literal = match &mut self.tok.kind {
            Tok::Num(n) => Literal::Number(*n),
            Tok::True => Literal::Bool(true),
            Tok::False => Literal::Bool(false),
            // The token is consumed right below, so its text can be moved out.
            Tok::Str(text) => Literal::Text(std::mem::take(text)),
            &mut Tok::Ident(word) if miscased_keyword(word).is_none() => {
                return Err(syntax(
                    self.src,
                    at,
                    format!(
                        "expected a value but found {word:?}: put text in double quotes, \
                         e.g. \"{word}\" (comparing two fields is not supported)"
                    ),
                ));
            }
            _ => {
                return Err(self.unexpected(
                    "expected a value: \"text\" in double quotes, a number, true or false",
                ));
            }
        };
        self.advance()?;
        Ok((literal, at))
    }

    fn compare(
        &mut self,
        field: FieldRef<'s>,
        op: CmpOp,
        op_at: usize,
        literal: Literal,
        at: usize,
    ) -> Result<u32, ConditionError> {
        if field.ty != FieldType::Any && field.ty != literal.ty() {
            return Err(ConditionError::TypeMismatch {
                field: field.path.to_owned(),
                column: column_at(self.src, at),
                expected: field.ty,
                found: literal.describe(),
            });
        }
        let slot = field.slot;
        let node = match literal {
            Literal::Number(rhs) => Node::Number { slot, op, rhs },
            Literal::Text(rhs) => Node::Text {
                slot,
                op,
                rhs: rhs.into_boxed_str(),
            },
            Literal::Bool(_) if op.is_ordering() => {
                return Err(ConditionError::UnorderedComparison {
                    field: field.path.to_owned(),
                    column: column_at(self.src, op_at),
                    operator: op.symbol().to_owned(),
                });
            }
            Literal::Bool(rhs) => Node::Bool { slot, op, rhs },
        };
        Ok(self.push(node))
    }

    fn membership(&mut self, field: FieldRef<'s>, negated: bool) -> Result<u32, ConditionError> {
        if !matches!(self.tok.kind, Tok::LBracket) {
            return Err(self.unexpected("expected \"[\" to start the list after \"in\""));
        }
        self.advance()?;
        if matches!(self.tok.kind, Tok::RBracket) {
            return Err(self.unexpected("the list is empty; list at least one value"));
        }
        let mut items: Vec<Literal> = Vec::new();
        let first_at = self.tok.start;
        loop {
            if items.len() == MAX_LIST_ITEMS {
                return Err(ConditionError::Limit {
                    kind: LimitKind::ListItems,
                    max: MAX_LIST_ITEMS,
                    column: column_at(self.src, self.tok.start),
                });
            }
            let (item, at) = self.literal()?;
            if let Some(first) = items.first()
                && first.ty() != item.ty()
            {
                return Err(syntax(
                    self.src,
                    at,
                    format!(
                        "list values must all have one type: the first is {} but this is {}",
                        first.ty(),
                        item.describe()
                    ),
                ));
            }
            items.push(item);
            match self.tok.kind {
                Tok::Comma => {
                    self.advance()?;
                }
                Tok::RBracket => {
                    self.advance()?;
                    break;
                }
                _ => return Err(self.unexpected("expected \",\" or \"]\" in the list")),
            }
        }
        let item_ty = items.first().map_or(FieldType::Any, Literal::ty);
        if field.ty != FieldType::Any && field.ty != item_ty {
            return Err(ConditionError::TypeMismatch {
                field: field.path.to_owned(),
                column: column_at(self.src, first_at),
                expected: field.ty,
                found: describe_list(item_ty).to_owned(),
            });
        }
        let slot = field.slot;
        let node = match item_ty {
            FieldType::Number => {
                let mut numbers: Vec<f64> = items
                    .into_iter()
                    .filter_map(|item| match item {
                        Literal::Number(n) => Some(n),
                        _ => None,
                    })
                    .collect();
                if numbers.len() > LINEAR_SCAN_MAX {
                    numbers.sort_by(f64::total_cmp);
                    numbers.dedup();
                }
                Node::InNumbers {
                    slot,
                    negated,
                    items: numbers.into_boxed_slice(),
                }
            }
            FieldType::Bool => Node::InBools {
                slot,
                negated,
                has_true: items.iter().any(|item| matches!(item, Literal::Bool(true))),
                has_false: items
                    .iter()
                    .any(|item| matches!(item, Literal::Bool(false))),
            },
            FieldType::Text | FieldType::Any => {
                let mut texts: Vec<Box<str>> = items
                    .into_iter()
                    .filter_map(|item| match item {
                        Literal::Text(s) => Some(s.into_boxed_str()),
                        _ => None,
                    })
                    .collect();
                if texts.len() > LINEAR_SCAN_MAX {
                    texts.sort();
                    texts.dedup();
                }
                Node::InTexts {
                    slot,
                    negated,
                    items: texts.into_boxed_slice(),
                }
            }
        };
        Ok(self.push(node))
    }
}

/// Known field closest to a mistyped `path`, if it is plausibly a typo of it.
fn closest_field(path: &str, known: &[String]) -> Option<String> {
    // Edit distance is quadratic; real field names are far shorter than this.
    const MAX_COMPARED_CHARS: usize = 64;
    if path.len() > MAX_COMPARED_CHARS {
        return None;
    }
    let allowed = (path.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .filter(|name| !name.contains('<') && name.len() <= MAX_COMPARED_CHARS)
        .map(|name| (edit_distance(path, name), name))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Clone, Debug, PartialEq)]
    enum Owned {
        Number(f64),
        Text(String),
        Bool(bool),
    }

    /// Catalog shaped like the production one: typed fields plus open-ended
    /// `attr.*` and `ctx.*` names that get slots on first use.
    struct TestCatalog {
        typed: &'static [(&'static str, FieldType)],
        dynamic: RefCell<Vec<String>>,
    }

    const TYPED: &[(&str, FieldType)] = &[
        ("value.clv_365d", FieldType::Number),
        ("value.p_alive", FieldType::Number),
        ("segment", FieldType::Text),
        ("profile.purchases", FieldType::Number),
        ("profile.days_since_last_purchase", FieldType::Number),
        ("profile.opted_in", FieldType::Bool),
    ];

    impl TestCatalog {
        fn new() -> Self {
            TestCatalog {
                typed: TYPED,
                dynamic: RefCell::new(Vec::new()),
            }
        }
    }

    impl FieldCatalog for TestCatalog {
        fn resolve(&self, path: &str) -> Option<(FieldSlot, FieldType)> {
            if let Some(index) = self.typed.iter().position(|(name, _)| *name == path) {
                return Some((FieldSlot(index as u32), self.typed[index].1));
            }
            let free = ["attr.", "ctx."].iter().any(|prefix| {
                path.strip_prefix(prefix)
                    .is_some_and(|rest| !rest.is_empty())
            });
            if !free {
                return None;
            }
            let mut dynamic = self.dynamic.borrow_mut();
            let index = dynamic
                .iter()
                .position(|name| name == path)
                .unwrap_or_else(|| {
                    dynamic.push(path.to_owned());
                    dynamic.len() - 1
                });
            Some((FieldSlot((self.typed.len() + index) as u32), FieldType::Any))
        }

        fn known_fields(&self) -> Vec<String> {
            ["attr.<name>", "ctx.<name>"]
                .into_iter()
                .chain(self.typed.iter().map(|(name, _)| *name))
                .map(str::to_owned)
                .collect()
        }
    }

    #[derive(Default)]
    struct TestFacts(HashMap<FieldSlot, Owned>);

    impl Facts for TestFacts {
        fn get(&self, slot: FieldSlot) -> Option<Fact<'_>> {
            self.0.get(&slot).map(|value| match value {
                Owned::Number(n) => Fact::Number(*n),
                Owned::Text(s) => Fact::Text(s),
                Owned::Bool(b) => Fact::Bool(*b),
            })
        }
    }

    fn num(n: f64) -> Owned {
        Owned::Number(n)
    }

    fn text(s: &str) -> Owned {
        Owned::Text(s.to_owned())
    }

    fn facts(catalog: &TestCatalog, values: &[(&str, Owned)]) -> TestFacts {
        TestFacts(
            values
                .iter()
                .map(|(name, value)| {
                    let (slot, _) = catalog
                        .resolve(name)
                        .expect("test fact names a known field");
                    (slot, value.clone())
                })
                .collect(),
        )
    }

    /// Compiles `source` and evaluates it on `values`.
    fn holds(source: &str, values: &[(&str, Owned)]) -> bool {
        let catalog = TestCatalog::new();
        let condition =
            compile(source, &catalog).unwrap_or_else(|e| panic!("{source:?} should compile: {e}"));
        condition.evaluate(&facts(&catalog, values))
    }

    fn error(source: &str) -> ConditionError {
        match compile(source, &TestCatalog::new()) {
            Ok(_) => panic!("{source:?} should not compile"),
            Err(e) => e,
        }
    }

    #[test]
    fn age_band_list_and_clv_threshold_example_evaluates() {
        let src = r#"attr.age_band in ["25-34", "35-44"] and value.clv_365d >= 100"#;
        assert!(holds(
            src,
            &[
                ("attr.age_band", text("25-34")),
                ("value.clv_365d", num(100.0))
            ]
        ));
        assert!(holds(
            src,
            &[
                ("attr.age_band", text("35-44")),
                ("value.clv_365d", num(250.5))
            ]
        ));
        assert!(!holds(
            src,
            &[
                ("attr.age_band", text("45-54")),
                ("value.clv_365d", num(500.0))
            ]
        ));
        assert!(!holds(
            src,
            &[
                ("attr.age_band", text("25-34")),
                ("value.clv_365d", num(99.99))
            ]
        ));
        assert!(!holds(src, &[("value.clv_365d", num(500.0))]));
    }

    #[test]
    fn negated_region_or_mobile_device_example_evaluates() {
        let src = r#"not (attr.region == "south") or ctx.device == "mobile""#;
        assert!(holds(src, &[("attr.region", text("north"))]));
        assert!(holds(src, &[]));
        assert!(!holds(
            src,
            &[
                ("attr.region", text("south")),
                ("ctx.device", text("desktop"))
            ]
        ));
        assert!(holds(
            src,
            &[
                ("attr.region", text("south")),
                ("ctx.device", text("mobile"))
            ]
        ));
    }

    #[test]
    fn segment_and_p_alive_example_evaluates() {
        let src = r#"segment != "lapsed" and value.p_alive > 0.3"#;
        assert!(holds(
            src,
            &[("segment", text("loyal")), ("value.p_alive", num(0.31))]
        ));
        assert!(!holds(
            src,
            &[("segment", text("lapsed")), ("value.p_alive", num(0.9))]
        ));
        assert!(!holds(
            src,
            &[("segment", text("loyal")), ("value.p_alive", num(0.3))]
        ));
        assert!(holds(src, &[("value.p_alive", num(0.5))]));
    }

    #[test]
    fn has_guard_example_evaluates() {
        let src = "has(attr.income) and attr.income > 50000";
        assert!(holds(src, &[("attr.income", num(50_001.0))]));
        assert!(!holds(src, &[("attr.income", num(50_000.0))]));
        assert!(!holds(src, &[]));
        assert!(!holds(src, &[("attr.income", text("lots"))]));
    }

    #[test]
    fn placement_example_evaluates() {
        let src = r#"ctx.placement == "homepage_hero""#;
        assert!(holds(src, &[("ctx.placement", text("homepage_hero"))]));
        assert!(!holds(src, &[("ctx.placement", text("Homepage_Hero"))]));
        assert!(!holds(src, &[]));
    }

    #[test]
    fn vip_bool_attribute_example_evaluates() {
        let src = "attr.vip == true";
        assert!(holds(src, &[("attr.vip", Owned::Bool(true))]));
        assert!(!holds(src, &[("attr.vip", Owned::Bool(false))]));
        assert!(!holds(src, &[("attr.vip", text("true"))]));
        assert!(!holds(src, &[]));
    }

    #[test]
    fn purchase_history_example_evaluates() {
        let src = "profile.purchases >= 2 and profile.days_since_last_purchase < 90";
        let ok = [
            ("profile.purchases", num(2.0)),
            ("profile.days_since_last_purchase", num(89.0)),
        ];
        assert!(holds(src, &ok));
        let stale = [
            ("profile.purchases", num(5.0)),
            ("profile.days_since_last_purchase", num(90.0)),
        ];
        assert!(!holds(src, &stale));
        assert!(!holds(src, &[("profile.purchases", num(1.0))]));
    }

    #[test]
    fn missing_attribute_makes_equality_false_and_inequality_true() {
        assert!(!holds(r#"attr.x == "a""#, &[]));
        assert!(holds(r#"attr.x != "a""#, &[]));
        for op in ["<", "<=", ">", ">="] {
            assert!(!holds(&format!("attr.x {op} 1"), &[]), "{op}");
        }
        assert!(!holds("attr.x in [1, 2]", &[]));
        assert!(holds("attr.x not in [1, 2]", &[]));
        assert!(!holds("has(attr.x)", &[]));
    }

    #[test]
    fn runtime_type_mismatch_behaves_like_a_missing_value() {
        let number = [("attr.x", num(1.0))];
        assert!(!holds(r#"attr.x == "1""#, &number));
        assert!(holds(r#"attr.x != "1""#, &number));
        assert!(!holds(r#"attr.x < "z""#, &number));
        assert!(!holds(r#"attr.x in ["1"]"#, &number));
        assert!(holds(r#"attr.x not in ["1"]"#, &number));
        assert!(!holds("attr.x == true", &number));
        assert!(holds("has(attr.x)", &number));
        // A provider that disagrees with the catalog's type must not break evaluation.
        assert!(!holds(
            "value.p_alive > 0.5",
            &[("value.p_alive", text("0.9"))]
        ));
    }

    #[test]
    fn has_is_true_for_any_present_value() {
        for value in [num(0.0), text(""), Owned::Bool(false)] {
            assert!(holds("has(attr.x)", &[("attr.x", value)]));
        }
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let src = "not attr.a == 1 or attr.b == 1 and attr.c == 1";
        // Reads as (not a) or (b and c).
        assert!(holds(src, &[("attr.a", num(2.0))]));
        assert!(!holds(src, &[("attr.a", num(1.0)), ("attr.b", num(1.0))]));
        assert!(holds(
            src,
            &[
                ("attr.a", num(1.0)),
                ("attr.b", num(1.0)),
                ("attr.c", num(1.0))
            ]
        ));
        let grouped = "not (attr.a == 1 or attr.b == 1)";
        assert!(!holds(grouped, &[("attr.b", num(1.0))]));
    }

    #[test]
    fn not_in_is_the_negation_of_in_for_present_values() {
        assert!(holds(
            r#"segment not in ["a", "b"]"#,
            &[("segment", text("c"))]
        ));
        assert!(!holds(
            r#"segment not in ["a", "b"]"#,
            &[("segment", text("b"))]
        ));
    }

    #[test]
    fn text_ordering_is_lexicographic_and_case_sensitive() {
        let b = [("segment", text("B"))];
        assert!(holds(r#"segment < "a""#, &b));
        assert!(!holds(r#"segment == "b""#, &b));
        assert!(holds(r#"segment >= "B""#, &b));
        assert!(holds(r#"segment < "9""#, &[("segment", text("10"))]));
    }

    #[test]
    fn number_equality_is_exact() {
        assert!(!holds(
            "value.p_alive == 0.3",
            &[("value.p_alive", num(0.1 + 0.2))]
        ));
        assert!(holds(
            "value.p_alive == 0.3",
            &[("value.p_alive", num(0.3))]
        ));
        assert!(holds(
            "value.p_alive == -0.5",
            &[("value.p_alive", num(-0.5))]
        ));
    }

    #[test]
    fn nan_fact_behaves_like_a_missing_value() {
        let nan = [("value.p_alive", num(f64::NAN))];
        assert!(!holds("value.p_alive == 0", &nan));
        assert!(holds("value.p_alive != 0", &nan));
        assert!(!holds("value.p_alive >= 0", &nan));
        assert!(!holds("value.p_alive in [0, 1]", &nan));
    }

    #[test]
    fn negative_zero_equals_zero_in_short_and_long_lists() {
        let short = "value.p_alive in [0, 1]";
        let long = "value.p_alive in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]";
        for src in [short, long] {
            assert!(holds(src, &[("value.p_alive", num(-0.0))]), "{src}");
        }
        assert!(holds(
            "value.p_alive in [-0, 5, 6, 7, 8, 9, 10, 11, 12]",
            &[("value.p_alive", num(0.0))]
        ));
        assert!(holds("value.p_alive == -0", &[("value.p_alive", num(0.0))]));
    }

    #[test]
    fn long_lists_find_the_same_items_as_short_ones() {
        let words: Vec<String> = (0..40).map(|i| format!("w{:02}", (i * 7) % 40)).collect();
        let list = words
            .iter()
            .chain(words.iter().take(5))
            .map(|w| format!("{w:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let src = format!("segment in [{list}]");
        for i in 0..45 {
            let candidate = format!("w{i:02}");
            assert_eq!(
                holds(&src, &[("segment", text(&candidate))]),
                i < 40,
                "{candidate}"
            );
        }
        let numbers = (0..30)
            .map(|i| format!("{}", 30 - i))
            .collect::<Vec<_>>()
            .join(", ");
        let src = format!("profile.purchases in [{numbers}]");
        assert!(holds(&src, &[("profile.purchases", num(17.0))]));
        assert!(!holds(&src, &[("profile.purchases", num(17.5))]));
        assert!(!holds(&src, &[("profile.purchases", num(0.0))]));
    }

    #[test]
    fn bool_lists_match_listed_values_only() {
        assert!(holds(
            "attr.vip in [true]",
            &[("attr.vip", Owned::Bool(true))]
        ));
        assert!(!holds(
            "attr.vip in [true]",
            &[("attr.vip", Owned::Bool(false))]
        ));
        assert!(holds(
            "profile.opted_in not in [false]",
            &[("profile.opted_in", Owned::Bool(true))]
        ));
    }

    #[test]
    fn string_escapes_produce_quote_and_backslash() {
        let src = r#"segment == "say \"hi\" \\ bye""#;
        assert!(holds(src, &[("segment", text(r#"say "hi" \ bye"#))]));
    }

    #[test]
    fn empty_or_blank_condition_is_always_eligible() {
        for src in ["", "   ", "\n\t "] {
            let condition = compile(src, &TestCatalog::new()).expect("blank compiles");
            assert!(condition.is_always());
            assert!(condition.evaluate(&TestFacts::default()));
            assert_eq!(condition.fields().count(), 0);
        }
    }

    #[test]
    fn fields_lists_each_read_slot_once_in_source_order() {
        let catalog = TestCatalog::new();
        let condition = compile(
            "segment == \"a\" or (value.p_alive > 1 and segment != \"b\") or has(attr.z)",
            &catalog,
        )
        .expect("compiles");
        let expected: Vec<FieldSlot> = ["segment", "value.p_alive", "attr.z"]
            .iter()
            .map(|name| catalog.resolve(name).expect("known").0)
            .collect();
        assert_eq!(condition.fields().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn display_and_source_return_the_original_text() {
        let src = "  value.p_alive >  0.5 ";
        let condition = compile(src, &TestCatalog::new()).expect("compiles");
        assert_eq!(condition.source(), src);
        assert_eq!(condition.to_string(), src);
        assert_eq!(format!("{}", condition.clone()), src);
    }

    #[test]
    fn condition_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + fmt::Debug>() {}
        assert_send_sync::<Condition>();
        assert_send_sync::<ConditionError>();
    }

    #[test]
    fn unknown_field_error_names_the_field_column_and_known_fields() {
        let e = error(r#"attr == "x""#);
        assert!(matches!(
            &e,
            ConditionError::UnknownField { field, column: 1, .. } if field == "attr"
        ));
        assert_eq!(
            e.to_string(),
            "unknown field \"attr\" at column 1: fields look like attr.<name>, ctx.<name>, \
             value.clv_365d, value.p_alive, segment, profile.purchases, \
             profile.days_since_last_purchase, profile.opted_in"
        );
    }

    #[test]
    fn misspelled_field_suggests_the_closest_known_field() {
        let e = error("value.p_alve > 0.3 ");
        assert!(matches!(
            &e,
            ConditionError::UnknownField { suggestion: Some(s), .. } if s == "value.p_alive"
        ));
        assert!(
            e.to_string().contains("did you mean \"value.p_alive\"?"),
            "{e}"
        );
        let e = error(r#"segment == "a" and sgement == "b""#);
        assert_eq!(e.column(), 20);
    }

    #[test]
    fn typed_field_compared_with_wrong_literal_is_a_type_mismatch() {
        let e = error(r#"value.p_alive == "x""#);
        assert_eq!(
            e,
            ConditionError::TypeMismatch {
                field: "value.p_alive".into(),
                column: 18,
                expected: FieldType::Number,
                found: "text \"x\"".into(),
            }
        );
        assert_eq!(
            e.to_string(),
            "type mismatch at column 18: field \"value.p_alive\" holds number values \
             but is compared with text \"x\""
        );
        assert!(matches!(
            error("segment > 3"),
            ConditionError::TypeMismatch { field, expected: FieldType::Text, .. } if field == "segment"
        ));
        assert!(matches!(
            error(r#"value.clv_365d in ["1", "2"]"#),
            ConditionError::TypeMismatch { field, expected: FieldType::Number, column: 20, found }
                if field == "value.clv_365d" && found == "a list of text"
        ));
    }

    #[test]
    fn ordering_true_and_false_is_rejected() {
        let e = error("attr.vip > false");
        assert!(matches!(
            &e,
            ConditionError::UnorderedComparison { field, column: 10, operator } if field == "attr.vip" && operator == ">"
        ));
        assert!(matches!(
            error("profile.opted_in <= true"),
            ConditionError::UnorderedComparison { .. }
        ));
    }

    #[test]
    fn unclosed_parenthesis_points_at_the_end_and_names_the_opening_column() {
        let e = error(r#"(segment == "a" and (value.p_alive > 1)"#);
        let ConditionError::Syntax {
            column,
            excerpt,
            message,
        } = &e
        else {
            panic!("expected a syntax error, got {e:?}");
        };
        assert_eq!(*column, 40);
        assert!(excerpt.is_empty());
        assert!(message.contains("column 1"), "{message}");
        assert!(e.to_string().contains("(end of condition)"), "{e}");
    }

    #[test]
    fn unmatched_closing_parenthesis_is_a_syntax_error() {
        let e = error(r#"segment == "a")"#);
        assert!(matches!(&e, ConditionError::Syntax { column: 15, excerpt, .. } if excerpt == ")"));
        assert!(e.to_string().contains("without a matching"), "{e}");
    }

    #[test]
    fn trailing_garbage_is_rejected_with_its_column_and_text() {
        let e = error(r#"segment == "a" value.p_alive > 1"#);
        assert!(matches!(
            &e,
            ConditionError::Syntax { column: 16, excerpt, .. } if excerpt.starts_with("value.p_alive")
        ));
        assert_eq!(
            e.to_string(),
            "syntax error at column 16 near \"value.p_alive > 1\": \
             expected \"and\", \"or\" or the end of the condition"
        );
    }

    #[test]
    fn bad_string_escape_is_rejected_at_the_backslash() {
        let e = error(r#"segment == "a\nb""#);
        assert!(
            matches!(&e, ConditionError::Syntax { column: 14, excerpt, message }
            if excerpt.starts_with("\\n") && message.contains("escape"))
        );
    }

    #[test]
    fn unterminated_string_is_rejected_at_its_opening_quote() {
        assert!(matches!(
            error(r#"segment == "abc"#),
            ConditionError::Syntax { column: 12, .. }
        ));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = error(r#"segment == "ééé" and nope.x == 1"#);
        assert!(matches!(e, ConditionError::UnknownField { column: 22, .. }));
    }

    #[test]
    fn over_long_source_is_rejected() {
        let item = r#""abcdefgh", "#;
        let long = format!("segment in [{}\"z\"]", item.repeat(200));
        assert!(long.chars().count() > MAX_SOURCE_CHARS);
        let e = error(&long);
        assert!(matches!(
            e,
            ConditionError::Limit {
                kind: LimitKind::SourceLength,
                max: MAX_SOURCE_CHARS,
                ..
            }
        ));
        assert!(e.to_string().contains("longer than 2000 characters"), "{e}");
        // Multi-byte characters count once, so this is just within the limit.
        let wide = format!("segment == \"{}\"", "é".repeat(MAX_SOURCE_CHARS - 13));
        assert_eq!(wide.chars().count(), MAX_SOURCE_CHARS);
        assert!(compile(&wide, &TestCatalog::new()).is_ok());
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_rejected_but_the_limit_itself_is_accepted() {
        let nest =
            |depth: usize| format!("{}segment == \"a\"{}", "(".repeat(depth), ")".repeat(depth));
        assert!(compile(&nest(MAX_DEPTH), &TestCatalog::new()).is_ok());
        let e = error(&nest(MAX_DEPTH + 1));
        assert_eq!(
            e,
            ConditionError::Limit {
                kind: LimitKind::NestingDepth,
                max: MAX_DEPTH,
                column: 33
            }
        );
        let nots = format!("{}segment == \"a\"", "not ".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            error(&nots),
            ConditionError::Limit {
                kind: LimitKind::NestingDepth,
                ..
            }
        ));
        let mixed = format!("{}segment == \"a\"{}", "not (".repeat(20), ")".repeat(20));
        assert!(matches!(
            error(&mixed),
            ConditionError::Limit {
                kind: LimitKind::NestingDepth,
                ..
            }
        ));
    }

    #[test]
    fn long_flat_and_chains_are_not_limited_by_depth() {
        let chain = vec!["value.p_alive > 0"; 90].join(" and ");
        assert!(holds(&chain, &[("value.p_alive", num(1.0))]));
    }

    #[test]
    fn list_with_too_many_items_is_rejected() {
        let items = (0..=MAX_LIST_ITEMS)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let e = error(&format!("value.p_alive in [{items}]"));
        assert!(matches!(
            e,
            ConditionError::Limit {
                kind: LimitKind::ListItems,
                max: MAX_LIST_ITEMS,
                ..
            }
        ));
        let items = (0..MAX_LIST_ITEMS)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(holds(
            &format!("value.p_alive in [{items}]"),
            &[("value.p_alive", num(255.0))]
        ));
    }

    #[test]
    fn list_mixing_types_is_rejected_at_the_odd_item() {
        let e = error(r#"attr.x in ["a", 2]"#);
        assert!(
            matches!(&e, ConditionError::Syntax { column: 17, message, .. } if message.contains("one type"))
        );
    }

    #[test]
    fn empty_list_is_rejected() {
        assert!(matches!(
            error("attr.x in []"),
            ConditionError::Syntax { column: 12, .. }
        ));
    }

    #[test]
    fn uppercase_keywords_get_a_lowercase_hint() {
        let e = error(r#"segment == "a" AND value.p_alive > 1"#);
        assert!(e.to_string().contains("write \"and\""), "{e}");
        let e = error("NOT segment == \"a\"");
        assert!(e.to_string().contains("write \"not\""), "{e}");
        let e = error("attr.vip == True");
        assert!(e.to_string().contains("write \"true\""), "{e}");
    }

    #[test]
    fn unquoted_text_value_gets_a_quoting_hint() {
        let e = error("segment == lapsed");
        assert!(e.to_string().contains("double quotes"), "{e}");
    }

    #[test]
    fn malformed_operators_and_numbers_are_syntax_errors() {
        for (src, column) in [
            ("segment = \"a\"", 9),
            ("! segment == \"a\"", 1),
            ("value.p_alive > 1.", 17),
            ("value.p_alive > .5", 17),
            ("value.p_alive > 1.2.3", 17),
            ("value.p_alive > - 1", 17),
            ("value.p_alive > 12abc", 17),
            ("attr. == 1", 5),
            ("segment == \"a\" & x", 16),
        ] {
            let e = error(src);
            assert!(matches!(e, ConditionError::Syntax { .. }), "{src}: {e:?}");
            assert_eq!(e.column(), column, "{src}: {e}");
        }
    }

    #[test]
    fn huge_number_literal_is_rejected() {
        let src = format!("value.p_alive < {}", "9".repeat(400));
        assert!(matches!(
            error(&src),
            ConditionError::Syntax { column: 17, .. }
        ));
    }

    #[test]
    fn field_types_display_in_lowercase() {
        assert_eq!(FieldType::Number.to_string(), "number");
        assert_eq!(FieldType::Any.to_string(), "any");
    }

    // ---- property tests ----------------------------------------------------

    /// Fields of the generated conditions; a field's slot is its index.
    const GEN_FIELDS: &[(&str, FieldType)] = &[
        ("value.n", FieldType::Number),
        ("value.m", FieldType::Number),
        ("segment", FieldType::Text),
        ("flag", FieldType::Bool),
        ("attr.a", FieldType::Any),
        ("ctx.b", FieldType::Any),
    ];

    fn gen_catalog() -> TestCatalog {
        TestCatalog {
            typed: GEN_FIELDS,
            dynamic: RefCell::new(Vec::new()),
        }
    }

    #[derive(Debug)]
    struct SlotFacts(Vec<Option<Owned>>);

    impl Facts for SlotFacts {
        fn get(&self, slot: FieldSlot) -> Option<Fact<'_>> {
            self.0
                .get(slot.0 as usize)?
                .as_ref()
                .map(|value| match value {
                    Owned::Number(n) => Fact::Number(*n),
                    Owned::Text(s) => Fact::Text(s),
                    Owned::Bool(b) => Fact::Bool(*b),
                })
        }
    }

    #[derive(Clone, Debug)]
    enum Expr {
        And(Vec<Expr>),
        Or(Vec<Expr>),
        Not(Box<Expr>),
        Has(usize),
        Cmp(usize, CmpOp, Owned),
        In(usize, bool, Vec<Owned>),
    }

    fn number_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            prop::sample::select(vec![-1.0, -0.0, 0.0, 0.5, 1.0, 2.0, 3.25, 100.0]),
            -1000.0f64..1000.0,
        ]
    }

    fn text_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec!["", "a", "b", "ab", "B", "é", "q\"t", "x\\y", "25-34"])
                .prop_map(str::to_owned),
            "[ab\"\\\\é ]{0,4}",
        ]
    }

    fn literal_of(ty: FieldType) -> BoxedStrategy<Owned> {
        match ty {
            FieldType::Number => number_value().prop_map(Owned::Number).boxed(),
            FieldType::Text => text_value().prop_map(Owned::Text).boxed(),
            FieldType::Bool | FieldType::Any => any::<bool>().prop_map(Owned::Bool).boxed(),
        }
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        (0..GEN_FIELDS.len(), 0..3usize).prop_flat_map(|(field, pick)| {
            let ty = match GEN_FIELDS[field].1 {
                FieldType::Any => [FieldType::Number, FieldType::Text, FieldType::Bool][pick],
                typed => typed,
            };
            let ops = if ty == FieldType::Bool {
                vec![CmpOp::Eq, CmpOp::Ne]
            } else {
                vec![
                    CmpOp::Eq,
                    CmpOp::Ne,
                    CmpOp::Lt,
                    CmpOp::Le,
                    CmpOp::Gt,
                    CmpOp::Ge,
                ]
            };
            prop_oneof![
                1 => Just(Expr::Has(field)),
                4 => (prop::sample::select(ops), literal_of(ty))
                    .prop_map(move |(op, lit)| Expr::Cmp(field, op, lit)),
                2 => (any::<bool>(), prop::collection::vec(literal_of(ty), 1..16))
                    .prop_map(move |(negated, items)| Expr::In(field, negated, items)),
            ]
        })
    }

    fn expr() -> impl Strategy<Value = Expr> {
        leaf().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
    }

    fn fact_value() -> impl Strategy<Value = Option<Owned>> {
        prop_oneof![
            2 => Just(None),
            3 => prop_oneof![number_value(), Just(f64::NAN)].prop_map(|n| Some(Owned::Number(n))),
            3 => text_value().prop_map(|s| Some(Owned::Text(s))),
            2 => any::<bool>().prop_map(|b| Some(Owned::Bool(b))),
        ]
    }

    fn slot_facts() -> impl Strategy<Value = SlotFacts> {
        prop::collection::vec(fact_value(), GEN_FIELDS.len()).prop_map(SlotFacts)
    }

    fn print_literal(lit: &Owned, out: &mut String) {
        match lit {
            // f64's Display is the shortest round-tripping decimal, never exponent notation.
            Owned::Number(n) => out.push_str(&n.to_string()),
            Owned::Text(s) => {
                out.push('"');
                out.push_str(&s.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            }
            Owned::Bool(b) => out.push_str(&b.to_string()),
        }
    }

    /// Prints with the fewest parentheses precedence allows, so precedence is exercised.
    fn print(e: &Expr, compact: bool, out: &mut String) {
        let space = if compact { "" } else { " " };
        match e {
            Expr::And(operands) => {
                for (i, operand) in operands.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" and ");
                    }
                    let wrap = matches!(operand, Expr::Or(_));
                    print_wrapped(operand, wrap, compact, out);
                }
            }
            Expr::Or(operands) => {
                for (i, operand) in operands.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" or ");
                    }
                    print(operand, compact, out);
                }
            }
            Expr::Not(operand) => {
                out.push_str("not ");
                let wrap = matches!(**operand, Expr::And(_) | Expr::Or(_));
                print_wrapped(operand, wrap, compact, out);
            }
            Expr::Has(field) => {
                out.push_str(&format!("has({space}{}{space})", GEN_FIELDS[*field].0));
            }
            Expr::Cmp(field, op, lit) => {
                out.push_str(&format!(
                    "{}{space}{}{space}",
                    GEN_FIELDS[*field].0,
                    op.symbol()
                ));
                print_literal(lit, out);
            }
            Expr::In(field, negated, items) => {
                out.push_str(GEN_FIELDS[*field].0);
                out.push_str(if *negated { " not in " } else { " in " });
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(space);
                    }
                    print_literal(item, out);
                }
                out.push(']');
            }
        }
    }

    fn print_wrapped(e: &Expr, wrap: bool, compact: bool, out: &mut String) {
        if wrap {
            out.push('(');
        }
        print(e, compact, out);
        if wrap {
            out.push(')');
        }
    }

    /// Direct reading of the documented semantics, sharing no code with the evaluator.
    fn reference(e: &Expr, facts: &[Option<Owned>]) -> bool {
        match e {
            Expr::And(operands) => operands.iter().all(|o| reference(o, facts)),
            Expr::Or(operands) => operands.iter().any(|o| reference(o, facts)),
            Expr::Not(operand) => !reference(operand, facts),
            Expr::Has(field) => facts[*field].is_some(),
            Expr::Cmp(field, op, lit) => {
                fn apply<T: PartialOrd + ?Sized>(op: CmpOp, a: &T, b: &T) -> bool {
                    match op {
                        CmpOp::Eq => a == b,
                        CmpOp::Ne => a != b,
                        CmpOp::Lt => a < b,
                        CmpOp::Le => a <= b,
                        CmpOp::Gt => a > b,
                        CmpOp::Ge => a >= b,
                    }
                }
                match (&facts[*field], lit) {
                    (Some(Owned::Number(a)), Owned::Number(b)) => apply(*op, a, b),
                    (Some(Owned::Text(a)), Owned::Text(b)) => apply(*op, a.as_str(), b.as_str()),
                    (Some(Owned::Bool(a)), Owned::Bool(b)) => apply(*op, a, b),
                    _ => *op == CmpOp::Ne,
                }
            }
            Expr::In(field, negated, items) => {
                let found = facts[*field].as_ref().is_some_and(|fact| {
                    items.iter().any(|item| match (fact, item) {
                        (Owned::Number(a), Owned::Number(b)) => a == b,
                        (Owned::Text(a), Owned::Text(b)) => a == b,
                        (Owned::Bool(a), Owned::Bool(b)) => a == b,
                        _ => false,
                    })
                });
                found != *negated
            }
        }
    }

    const TOKENS: &[&str] = &[
        "(",
        ")",
        "[",
        "]",
        ",",
        "and",
        "or",
        "not",
        "in",
        "has",
        "true",
        "false",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "value.n",
        "segment",
        "flag",
        "attr.a",
        "ctx.b",
        "nope.x",
        "\"t\"",
        "\"a\\\"b\"",
        "1",
        "-2.5",
        "0",
        "\"",
        "\\",
        "AND",
        "=",
        "!",
        "-",
        "1.",
        "é",
        "attr.",
    ];

    fn assert_error_is_well_formed(source: &str, e: &ConditionError) {
        let chars = source.chars().count();
        assert!(
            e.column() >= 1 && e.column() <= chars + 1,
            "{e:?} for {source:?}"
        );
        assert!(!e.to_string().is_empty());
    }

    proptest! {
        #[test]
        fn compile_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2100)) {
            let source = String::from_utf8_lossy(&bytes);
            match compile(&source, &gen_catalog()) {
                Ok(condition) => { let _ = condition.evaluate(&SlotFacts(Vec::new())); }
                Err(e) => assert_error_is_well_formed(&source, &e),
            }
        }

        #[test]
        fn compile_and_evaluate_never_panic_on_token_soup(
            tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40),
            facts in slot_facts(),
        ) {
            let source = tokens.join(" ");
            match compile(&source, &gen_catalog()) {
                Ok(condition) => { let _ = condition.evaluate(&facts); }
                Err(e) => assert_error_is_well_formed(&source, &e),
            }
        }

        #[test]
        fn printed_random_conditions_evaluate_like_the_reference(
            e in expr(),
            compact in any::<bool>(),
            facts in slot_facts(),
        ) {
            let mut source = String::new();
            print(&e, compact, &mut source);
            match compile(&source, &gen_catalog()) {
                Ok(condition) => {
                    prop_assert_eq!(condition.evaluate(&facts), reference(&e, &facts.0), "{}", source);
                }
                Err(err) => {
                    // Only size may legitimately reject a generated condition.
                    prop_assert!(
                        source.chars().count() > MAX_SOURCE_CHARS
                            && matches!(err, ConditionError::Limit { kind: LimitKind::SourceLength, .. }),
                        "{} failed: {}", source, err
                    );
                }
            }
        }

        #[test]
        fn not_of_a_condition_is_always_its_opposite(e in expr(), facts in slot_facts()) {
            let mut source = String::new();
            print(&e, false, &mut source);
            let negated = format!("not ({source})");
            prop_assume!(negated.chars().count() <= MAX_SOURCE_CHARS);
            let catalog = gen_catalog();
            let plain = compile(&source, &catalog).expect("generated condition compiles");
            let inverse = compile(&negated, &catalog).expect("negated condition compiles");
            prop_assert_eq!(inverse.evaluate(&facts), !plain.evaluate(&facts));
        }
    }
}
