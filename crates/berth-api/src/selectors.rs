//! Label selectors: the query-string syntax (`app=web,env in (a,b),!legacy`) and the
//! `metav1.LabelSelector` object (`matchLabels` + `matchExpressions`), with Kubernetes' parse
//! errors and matching rules.
//!
//! This module owns parsing and matching only; it must not know which objects carry which labels
//! (callers pass the label pairs, e.g. from [`crate::meta::labels`]).

use serde_json::Value;

use crate::validation;

/// Why a selector could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The query-string syntax is malformed; the message is Kubernetes' parser message.
    #[error("{0}")]
    Syntax(String),
    /// A key or value is not a valid label key or value, or a requirement is inconsistent.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
}

/// A requirement operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `key=value`, `key==value`, `key in (v1,v2)`: the label exists and has one of the values.
    In,
    /// `key!=value`, `key notin (v1,v2)`: the label is absent or has none of the values.
    NotIn,
    /// `key`: the label exists.
    Exists,
    /// `!key`: the label does not exist.
    DoesNotExist,
    /// `key>n`: the label exists and is an integer greater than `n`.
    GreaterThan,
    /// `key<n`: the label exists and is an integer less than `n`.
    LessThan,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub operator: Operator,
    /// The values (empty for `Exists`/`DoesNotExist`, one for `>`/`<`).
    pub values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, checking the key, the values and their number as Kubernetes'
    /// `NewRequirement` does.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let errs = validation::label_key(key);
        if let Some(e) = errs.first() {
            return Err(SelectorError::Requirement(format!(
                "key: Invalid value: \"{key}\": {e}"
            )));
        }
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(SelectorError::Requirement(
                    "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
                        .to_string(),
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(SelectorError::Requirement(format!(
                    "values: Invalid value: {values:?}: values set must be empty for exists and does not exist"
                )));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(SelectorError::Requirement(format!(
                        "values: Invalid value: {values:?}: for 'Gt', 'Lt' operators, exactly one value is required"
                    )));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(SelectorError::Requirement(format!(
                        "values[0]: Invalid value: \"{}\": for 'Gt', 'Lt' operators, the value must be an integer",
                        values[0]
                    )));
                }
            }
            _ => {}
        }
        if !matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for (i, v) in values.iter().enumerate() {
                if let Some(e) = validation::label_value(v).first() {
                    return Err(SelectorError::Requirement(format!(
                        "values[{i}][{key}]: Invalid value: \"{v}\": {e}"
                    )));
                }
            }
        }
        Ok(Self {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// True if a label set (given as a lookup) satisfies this requirement.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        let value = get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

/// A label selector: the conjunction of its requirements.
///
/// `nothing` is set for selectors that match no object at all: a `null` or absent
/// `metav1.LabelSelector` (Kubernetes' `labels.Nothing()`). An empty selector (the empty query
/// string or `{}` as an object) matches every object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// The requirements, all of which must hold.
    pub requirements: Vec<Requirement>,
    /// True for the selector that matches nothing.
    pub nothing: bool,
}

impl LabelSelector {
    /// The selector matching every label set.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector matching no label set.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// True if the selector has no requirements and matches everything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True if the labels (key-value pairs) satisfy every requirement.
    pub fn matches(&self, labels: &[(&str, &str)]) -> bool {
        self.matches_with(|k| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v))
    }

    /// True if the labels of `obj` (its `metadata.labels`) satisfy every requirement.
    pub fn matches_object(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.matches_with(|k| labels.and_then(|m| m.get(k)).and_then(Value::as_str))
    }

    /// Like [`Self::matches`], looking labels up through `get`.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_with(&get))
    }

    /// Parses a `metav1.LabelSelector` object. `null` gives [`LabelSelector::nothing`], `{}`
    /// gives [`LabelSelector::everything`].
    pub fn from_json(v: &Value) -> Result<Self, SelectorError> {
        from_json(v)
    }

    /// Parses the query-string syntax, see [`parse`].
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        parse(s)
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for r in &self.requirements {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            match r.operator {
                Operator::Exists => write!(f, "{}", r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
                Operator::GreaterThan => write!(f, "{}>{}", r.key, r.values.join(""))?,
                Operator::LessThan => write!(f, "{}<{}", r.key, r.values.join(""))?,
                Operator::In if r.values.len() == 1 => write!(f, "{}={}", r.key, r.values[0])?,
                Operator::NotIn if r.values.len() == 1 => write!(f, "{}!={}", r.key, r.values[0])?,
                Operator::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                Operator::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
            }
        }
        Ok(())
    }
}

/// Parses a `metav1.LabelSelector` JSON object (`matchLabels`, `matchExpressions` with
/// `In`/`NotIn`/`Exists`/`DoesNotExist`). A `null` selector matches nothing; an object with no
/// requirements matches everything.
pub fn from_json(v: &Value) -> Result<LabelSelector, SelectorError> {
    let Some(obj) = v.as_object() else {
        if v.is_null() {
            return Ok(LabelSelector::nothing());
        }
        return Err(SelectorError::Requirement(
            "selector: Invalid value: a label selector must be an object".to_string(),
        ));
    };
    let mut requirements = Vec::new();
    if let Some(ml) = obj.get("matchLabels").and_then(Value::as_object) {
        for (k, val) in ml {
            let s = val.as_str().unwrap_or_default();
            requirements.push(Requirement::new(k, Operator::In, vec![s.to_string()])?);
        }
    }
    if let Some(exprs) = obj.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let operator = match op {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::Requirement(format!(
                        "\"{other}\" is not a valid label selector operator"
                    )));
                }
            };
            requirements.push(Requirement::new(key, operator, values)?);
        }
    }
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(LabelSelector {
        requirements,
        nothing: false,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    OpenPar,
    ClosePar,
    Comma,
    GreaterThan,
    LessThan,
    End,
}

impl Token {
    fn literal(&self) -> &str {
        match self {
            Token::Identifier(s) => s,
            Token::DoesNotExist => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::In => "in",
            Token::NotIn => "notin",
            Token::OpenPar => "(",
            Token::ClosePar => ")",
            Token::Comma => ",",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::End => "",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '(' | ')' | ',' | '>' | '<')
}

/// Splits the input into tokens; `in` and `notin` are keywords only where an operator may
/// appear, which the parser decides, so the lexer yields them as identifiers.
fn lex(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (tok, len) = match (c, next) {
                ('!', Some('=')) => (Token::NotEquals, 2),
                ('!', _) => (Token::DoesNotExist, 1),
                ('=', Some('=')) => (Token::DoubleEquals, 2),
                ('=', _) => (Token::Equals, 1),
                ('(', _) => (Token::OpenPar, 1),
                (')', _) => (Token::ClosePar, 1),
                (',', _) => (Token::Comma, 1),
                ('>', _) => (Token::GreaterThan, 1),
                _ => (Token::LessThan, 1),
            };
            out.push(tok);
            i += len;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
            i += 1;
        }
        out.push(Token::Identifier(chars[start..i].iter().collect()));
    }
    out.push(Token::End);
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }
    /// The next token, reading `in`/`notin` as operators.
    fn peek_operator(&self) -> Token {
        match self.peek() {
            Token::Identifier(s) if s == "in" => Token::In,
            Token::Identifier(s) if s == "notin" => Token::NotIn,
            t => t.clone(),
        }
    }
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }
}

fn syntax(msg: String) -> SelectorError {
    SelectorError::Syntax(msg)
}

/// Parses the label selector query-string syntax as `kubectl -l` and `?labelSelector=` use it.
/// The empty string selects everything.
pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
    let mut p = Parser {
        tokens: lex(s),
        pos: 0,
    };
    let mut requirements = Vec::new();
    loop {
        match p.peek() {
            Token::Identifier(_) | Token::DoesNotExist => {}
            Token::End => break,
            t => {
                return Err(syntax(format!(
                    "found '{}', expected: !, identifier, or 'end of string'",
                    t.literal()
                )));
            }
        }
        requirements.push(parse_requirement(&mut p)?);
        match p.next() {
            Token::End => break,
            Token::Comma => match p.peek() {
                Token::Identifier(_) | Token::DoesNotExist => {}
                t => {
                    return Err(syntax(format!(
                        "found '{}', expected: identifier after ','",
                        t.literal()
                    )));
                }
            },
            t => {
                return Err(syntax(format!(
                    "found '{}', expected: ',' or 'end of string'",
                    t.literal()
                )));
            }
        }
    }
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(LabelSelector {
        requirements,
        nothing: false,
    })
}

fn parse_requirement(p: &mut Parser) -> Result<Requirement, SelectorError> {
    let mut negated = false;
    let mut tok = p.next();
    if tok == Token::DoesNotExist {
        negated = true;
        tok = p.next();
    }
    let Token::Identifier(key) = tok else {
        return Err(syntax(format!(
            "found '{}', expected: identifier",
            tok.literal()
        )));
    };
    if matches!(p.peek(), Token::End | Token::Comma) {
        let op = if negated {
            Operator::DoesNotExist
        } else {
            Operator::Exists
        };
        return Requirement::new(&key, op, Vec::new());
    }
    if negated {
        // `!key` must be followed by the end or a comma.
        let t = p.peek();
        return Err(syntax(format!(
            "found '{}', expected: ',' or 'end of string'",
            t.literal()
        )));
    }
    let op_tok = p.peek_operator();
    p.next();
    let (operator, values) = match op_tok {
        Token::Equals | Token::DoubleEquals => (Operator::In, vec![parse_exact_value(p)?]),
        Token::NotEquals => (Operator::NotIn, vec![parse_exact_value(p)?]),
        Token::GreaterThan => (Operator::GreaterThan, vec![parse_exact_value(p)?]),
        Token::LessThan => (Operator::LessThan, vec![parse_exact_value(p)?]),
        Token::In => (Operator::In, parse_set(p)?),
        Token::NotIn => (Operator::NotIn, parse_set(p)?),
        t => {
            return Err(syntax(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                t.literal()
            )));
        }
    };
    Requirement::new(&key, operator, values)
}

fn parse_exact_value(p: &mut Parser) -> Result<String, SelectorError> {
    match p.peek().clone() {
        Token::End | Token::Comma => Ok(String::new()),
        Token::Identifier(v) => {
            p.next();
            Ok(v)
        }
        t => Err(syntax(format!(
            "found '{}', expected: identifier",
            t.literal()
        ))),
    }
}

fn parse_set(p: &mut Parser) -> Result<Vec<String>, SelectorError> {
    let t = p.next();
    if t != Token::OpenPar {
        return Err(syntax(format!("found '{}', expected: '('", t.literal())));
    }
    let mut values = Vec::new();
    // Kubernetes allows empty members: `in (a,,b)` and `in ()` carry the empty string.
    match p.peek().clone() {
        Token::ClosePar => {
            p.next();
            return Ok(vec![String::new()]);
        }
        Token::Identifier(_) | Token::Comma => {}
        t => {
            return Err(syntax(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            )));
        }
    }
    let mut last_was_comma = true;
    loop {
        match p.next() {
            Token::Identifier(v) if last_was_comma => {
                values.push(v);
                last_was_comma = false;
            }
            Token::Comma => {
                if last_was_comma {
                    values.push(String::new());
                }
                last_was_comma = true;
            }
            Token::ClosePar => {
                if last_was_comma {
                    values.push(String::new());
                }
                break;
            }
            t => {
                return Err(syntax(format!(
                    "found '{}', expected: ',' or ')'",
                    t.literal()
                )));
            }
        }
    }
    values.sort();
    values.dedup();
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(sel: &str, labels: &[(&str, &str)]) -> bool {
        parse(sel).expect(sel).matches(labels)
    }

    #[test]
    fn parses_kubernetes_valid_examples() {
        for s in [
            "",
            "x=a,y=b,z=c",
            "x!=a,y=b",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
            "x in (a,b)",
            "x notin ( a , b )",
            "x in ()",
            "x in (,a)",
            "  x  ==  a  ",
            "a.b/c-d_e=1",
            "env in (prod, qa),tier notin (frontend),partition,!legacy",
        ] {
            assert!(parse(s).is_ok(), "{s:?}: {:?}", parse(s));
        }
    }

    #[test]
    fn rejects_kubernetes_invalid_examples() {
        for s in [
            "x=a||y=b", "x==a==b", "!x=a", "x<a", "x in (a", "x in a", ",x=a", "x=a,", "x notin",
            "(x)", "x=a b", "x>", "a b=c",
        ] {
            assert!(parse(s).is_err(), "{s:?} parsed as {:?}", parse(s));
        }
    }

    #[test]
    fn error_messages_match_kubernetes() {
        assert_eq!(
            parse("x in a").unwrap_err().to_string(),
            "found 'a', expected: '('"
        );
        assert_eq!(
            parse("x=a,").unwrap_err().to_string(),
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            parse("x foo").unwrap_err().to_string(),
            "found 'foo', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            parse("x=a b").unwrap_err().to_string(),
            "found 'b', expected: ',' or 'end of string'"
        );
        assert!(
            parse("a=b c")
                .unwrap_err()
                .to_string()
                .contains("expected: ',' or 'end of string'")
        );
        let e = parse("x=a_").unwrap_err().to_string();
        assert!(
            e.starts_with("unable to parse requirement: values[0][x]"),
            "{e}"
        );
        let e = parse("-x=a").unwrap_err().to_string();
        assert!(
            e.starts_with("unable to parse requirement: key: Invalid value: \"-x\""),
            "{e}"
        );
    }

    #[test]
    fn matching() {
        let l = [("app", "web"), ("env", "prod"), ("n", "5")];
        assert!(m("", &l));
        assert!(m("app=web", &l));
        assert!(m("app==web", &l));
        assert!(!m("app!=web", &l));
        assert!(m("app!=db", &l));
        assert!(m("missing!=x", &l));
        assert!(m("env in (prod,qa)", &l));
        assert!(!m("env notin (prod)", &l));
        assert!(m("missing notin (prod)", &l));
        assert!(m("app", &l));
        assert!(!m("!app", &l));
        assert!(m("!missing", &l));
        assert!(m("n>4,n<6", &l));
        assert!(!m("n>5", &l));
        assert!(!m("app=web,env=qa", &l));
        assert!(m("x=", &[("x", "")]));
        assert!(!m("x=", &[]));
    }

    #[test]
    fn json_selectors() {
        let s = from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert!(s.matches(&[("app", "web"), ("tier", "b")]));
        assert!(!s.matches(&[("app", "web"), ("tier", "b"), ("legacy", "1")]));
        assert!(!s.matches(&[("app", "web")]));
        assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "web", "tier": "a"}}})));
        let empty = from_json(&json!({})).unwrap();
        assert!(empty.is_empty() && empty.matches(&[]));
        let none = from_json(&Value::Null).unwrap();
        assert!(!none.is_empty() && !none.matches(&[]));
        assert!(from_json(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]})).is_err());
        assert!(
            from_json(
                &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
            )
            .is_err()
        );
        assert_eq!(
            from_json(&json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}))
                .unwrap_err()
                .to_string(),
            "unable to parse requirement: \"Bogus\" is not a valid label selector operator"
        );
    }

    #[test]
    fn display_round_trips() {
        let s = parse("b in (y,x),a=1,!c,d").unwrap();
        assert_eq!(s.to_string(), "a=1,b in (x,y),!c,d");
        assert_eq!(parse(&s.to_string()).unwrap(), s);
    }
}
