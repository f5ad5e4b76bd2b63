//! Label selectors: the query-string syntax (`app=web,env in (a,b),!legacy`) and the
//! `metav1.LabelSelector` object (`matchLabels` + `matchExpressions`), with Kubernetes' parse
//! errors and matching rules.
//!
//! This module owns parsing and matching only; it must not know which objects carry which labels
//! (callers pass the label pairs, e.g. from [`crate::meta::labels`]).

use serde_json::Value;

use crate::validation;

/// Why a selector could not be parsed. The messages are Kubernetes' own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The query-string syntax is malformed between requirements.
    #[error("{0}")]
    Syntax(String),
    /// One requirement of the query string is malformed or has an invalid key or value.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A requirement built from a `metav1.LabelSelector` is invalid (field errors such as
    /// `key: Invalid value: ...`), or its operator is unknown.
    #[error("{0}")]
    Invalid(String),
}

/// Joins field errors as Kubernetes' aggregate does: one error alone, several in brackets.
fn aggregate(errs: &[String]) -> String {
    if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("[{}]", errs.join(", "))
    }
}

fn go_list(values: &[String]) -> String {
    format!(
        "[]string{{{}}}",
        values
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
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

fn requirement_errors(key: &str, operator: Operator, values: &[String]) -> Vec<String> {
    let mut errs = Vec::new();
    let key_errs = validation::label_key(key);
    if !key_errs.is_empty() {
        errs.push(format!(
            "key: Invalid value: \"{key}\": {}",
            key_errs.join("; ")
        ));
    }
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => errs.push(format!(
            "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
            go_list(values)
        )),
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(format!(
            "values: Invalid value: {}: values set must be empty for exists and does not exist",
            go_list(values)
        )),
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(format!(
                    "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                    go_list(values)
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(format!(
                        "values[{i}]: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, the value must be an integer"
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let value_errs = validation::label_value(v);
        if !value_errs.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: \"{v}\": {}",
                value_errs.join("; ")
            ));
        }
    }
    errs
}

impl Requirement {
    /// Builds a requirement, checking the key, the values and their number as Kubernetes'
    /// `NewRequirement` does; the error carries its field errors (`key: ...`, `values[0]...`).
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let errs = requirement_errors(key, operator, &values);
        if !errs.is_empty() {
            return Err(SelectorError::Invalid(aggregate(&errs)));
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

/// A selector from a plain label map (a Service's or ReplicationController's `selector`), as
/// Kubernetes' `SelectorFromSet`: every pair must match; an empty or absent map matches
/// everything. Pairs are not validated.
pub fn from_set(v: &Value) -> LabelSelector {
    let mut requirements: Vec<Requirement> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, val)| Requirement {
            key: k.clone(),
            operator: Operator::In,
            values: vec![val.as_str().unwrap_or_default().to_string()],
        })
        .collect();
    requirements.sort_by(|a, b| a.key.cmp(&b.key));
    LabelSelector {
        requirements,
        nothing: false,
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
        return Err(SelectorError::Invalid(
            "a label selector must be an object".to_string(),
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
                    return Err(SelectorError::Invalid(format!(
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

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
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
        if is_space(c) {
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
        while i < chars.len() && !is_space(chars[i]) && !is_special(chars[i]) {
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
        requirements.push(parse_requirement(&mut p).map_err(SelectorError::Requirement)?);
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

fn parse_requirement(p: &mut Parser) -> Result<Requirement, String> {
    let mut negated = false;
    let mut tok = p.next();
    if tok == Token::DoesNotExist {
        negated = true;
        tok = p.next();
    }
    let Token::Identifier(key) = tok else {
        return Err(format!("found '{}', expected: identifier", tok.literal()));
    };
    let key_errs = validation::label_key(&key);
    if !key_errs.is_empty() {
        return Err(format!(
            ": Invalid value: \"{key}\": {}",
            key_errs.join("; ")
        ));
    }
    // `!key` is complete by itself: what follows must be a comma or the end, which the caller
    // checks.
    if negated || matches!(p.peek(), Token::End | Token::Comma) {
        let op = if negated {
            Operator::DoesNotExist
        } else {
            Operator::Exists
        };
        return build(&key, op, Vec::new());
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
            return Err(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                t.literal()
            ));
        }
    };
    build(&key, operator, values)
}

fn build(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, String> {
    let errs = requirement_errors(key, operator, &values);
    if !errs.is_empty() {
        return Err(aggregate(&errs));
    }
    Ok(Requirement {
        key: key.to_string(),
        operator,
        values,
    })
}

fn parse_exact_value(p: &mut Parser) -> Result<String, String> {
    match p.peek().clone() {
        Token::End | Token::Comma => Ok(String::new()),
        Token::Identifier(v) => {
            p.next();
            Ok(v)
        }
        t => Err(format!("found '{}', expected: identifier", t.literal())),
    }
}

fn parse_set(p: &mut Parser) -> Result<Vec<String>, String> {
    let t = p.next();
    if t != Token::OpenPar {
        return Err(format!("found '{}' expected: '('", t.literal()));
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
            return Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            ));
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
            t if last_was_comma => {
                return Err(format!(
                    "found '{}', expected: ',', or identifier",
                    t.literal()
                ));
            }
            t => {
                return Err(format!("found '{}', expected: ',' or ')'", t.literal()));
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
        let err = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(
            err("x in a"),
            "unable to parse requirement: found 'a' expected: '('"
        );
        assert_eq!(err("x=a,"), "found '', expected: identifier after ','");
        assert_eq!(
            err("x foo"),
            "unable to parse requirement: found 'foo', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("x=a b"), "found 'b', expected: ',' or 'end of string'");
        assert_eq!(err("!x=a"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(
            err(",x"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("x in (a b)"),
            "unable to parse requirement: found 'b', expected: ',' or ')'"
        );
        assert_eq!(
            err("x in (a,=)"),
            "unable to parse requirement: found '=', expected: ',', or identifier"
        );
        assert_eq!(
            err("x=a_"),
            format!(
                "unable to parse requirement: values[0][x]: Invalid value: \"a_\": {}",
                validation::label_value("a_")[0]
            )
        );
        assert_eq!(
            err("-x=a"),
            format!(
                "unable to parse requirement: : Invalid value: \"-x\": {}",
                validation::label_key("-x").join("; ")
            )
        );
        assert_eq!(
            err("x>a"),
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
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
        assert_eq!(
            from_json(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]}))
                .unwrap_err()
                .to_string(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        assert!(
            from_json(&json!({"matchLabels": {"a b": "c_"}}))
                .unwrap_err()
                .to_string()
                .starts_with("[key: Invalid value: \"a b\": name part must consist")
        );
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
            "\"Bogus\" is not a valid label selector operator"
        );
    }

    #[test]
    fn set_selectors() {
        let s = from_set(&json!({"app": "web", "tier": "fe"}));
        assert!(s.matches(&[("app", "web"), ("tier", "fe"), ("x", "y")]));
        assert!(!s.matches(&[("app", "web")]));
        assert!(from_set(&json!({})).is_empty());
        assert!(from_set(&Value::Null).matches(&[]));
    }

    #[test]
    fn display_round_trips() {
        let s = parse("b in (y,x),a=1,!c,d").unwrap();
        assert_eq!(s.to_string(), "a=1,b in (x,y),!c,d");
        assert_eq!(parse(&s.to_string()).unwrap(), s);
    }
}
