//! The subset of SOQL Lightbridge and common clients send: `SELECT fields | COUNT() FROM object
//! [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n]`, with `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`,
//! `LIKE`, `IN`, `NOT IN`, `AND`, `OR`, `NOT` and parentheses. Anything else is answered with
//! Salesforce's `MALFORMED_QUERY`, `INVALID_FIELD` or `INVALID_TYPE` and its caret message.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub fields: Vec<FieldRef>,
    pub count: bool,
    pub object: FieldRef,
    pub filter: Option<Expr>,
    pub order: Vec<(FieldRef, bool)>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// A name as written, with its byte position for error carets.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub name: String,
    pub pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(FieldRef, Op, Literal),
    In(FieldRef, bool, Vec<Literal>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

/// A SOQL error in Salesforce's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct SoqlError {
    pub code: &'static str,
    pub message: String,
}

impl SoqlError {
    fn at(soql: &str, pos: usize, code: &'static str, text: String) -> Self {
        // Salesforce's message: the query, a caret under the offending token, its position.
        let caret = " ".repeat(soql[..pos.min(soql.len())].chars().count());
        SoqlError { code, message: format!("\n{soql}\n{caret}^\nERROR at Row:1:Column:{}\n{text}", pos + 1) }
    }
    pub fn invalid_field(soql: &str, field: &FieldRef, object: &str) -> Self {
        Self::at(
            soql,
            field.pos,
            "INVALID_FIELD",
            format!(
                "No such column '{}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                field.name
            ),
        )
    }
    pub fn invalid_type(soql: &str, object: &FieldRef) -> Self {
        Self::at(
            soql,
            object.pos,
            "INVALID_TYPE",
            format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                object.name
            ),
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

fn tokenize(soql: &str) -> Result<Vec<(Tok, usize)>, SoqlError> {
    let bytes = soql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' {
            let start = i;
            i += 1;
            let mut s = String::new();
            loop {
                match bytes.get(i) {
                    None => {
                        return Err(SoqlError::at(
                            soql,
                            start,
                            "MALFORMED_QUERY",
                            "unterminated string literal".into(),
                        ));
                    }
                    Some(b'\\') => {
                        let esc = *bytes.get(i + 1).unwrap_or(&b'\\');
                        s.push(match esc {
                            b'n' => '\n',
                            b't' => '\t',
                            b'r' => '\r',
                            other => other as char,
                        });
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = soql[i..].chars().next().unwrap_or(' ');
                        s.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            out.push((Tok::Str(s), start));
        } else if c.is_ascii_digit() || (c == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'-' | b':' | b'+'))
            {
                i += 1;
            }
            let text = &soql[start..i];
            match text.parse::<f64>() {
                Ok(n) => out.push((Tok::Num(n), start)),
                // Date and datetime literals compare as text.
                Err(_) => out.push((Tok::Str(text.to_string()), start)),
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.')) {
                i += 1;
            }
            out.push((Tok::Word(soql[start..i].to_string()), start));
        } else {
            let two = soql.get(i..i + 2).unwrap_or("");
            let sym = match two {
                "!=" => Some("!="),
                "<>" => Some("<>"),
                "<=" => Some("<="),
                ">=" => Some(">="),
                _ => None,
            };
            if let Some(sym) = sym {
                out.push((Tok::Sym(sym), i));
                i += 2;
                continue;
            }
            let sym = match c {
                b',' => ",",
                b'(' => "(",
                b')' => ")",
                b'=' => "=",
                b'<' => "<",
                b'>' => ">",
                _ => {
                    let ch = soql[i..].chars().next().unwrap_or('?');
                    return Err(SoqlError::at(soql, i, "MALFORMED_QUERY", format!("unexpected token: '{ch}'")));
                }
            };
            out.push((Tok::Sym(sym), i));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser<'a> {
    soql: &'a str,
    toks: Vec<(Tok, usize)>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.soql.len(), |(_, p)| *p)
    }
    fn unexpected(&self) -> SoqlError {
        let text = match self.toks.get(self.at) {
            Some((Tok::Word(w), _)) => format!("unexpected token: '{w}'"),
            Some((Tok::Str(s), _)) => format!("unexpected token: '{s}'"),
            Some((Tok::Num(n), _)) => format!("unexpected token: '{n}'"),
            Some((Tok::Sym(s), _)) => format!("unexpected token: '{s}'"),
            None => "unexpected token: <EOF>".to_string(),
        };
        SoqlError::at(self.soql, self.pos(), "MALFORMED_QUERY", text)
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.at += 1;
        }
        hit
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) { Ok(()) } else { Err(self.unexpected()) }
    }
    fn eat_sym(&mut self, sym: &str) -> bool {
        let hit = matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym);
        if hit {
            self.at += 1;
        }
        hit
    }
    fn name(&mut self) -> Result<FieldRef, SoqlError> {
        match self.toks.get(self.at) {
            Some((Tok::Word(w), pos)) if !is_reserved(w) => {
                let r = FieldRef { name: w.clone(), pos: *pos };
                self.at += 1;
                Ok(r)
            }
            _ => Err(self.unexpected()),
        }
    }
    fn number(&mut self) -> Result<usize, SoqlError> {
        match self.peek() {
            Some(Tok::Num(n)) if *n >= 0.0 && n.fract() == 0.0 => {
                let n = *n as usize;
                self.at += 1;
                Ok(n)
            }
            _ => Err(self.unexpected()),
        }
    }
    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let lit = match self.peek() {
            Some(Tok::Str(s)) => Literal::Str(s.clone()),
            Some(Tok::Num(n)) => Literal::Num(*n),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Literal::Null,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        Ok(lit)
    }
    fn expr(&mut self) -> Result<Expr, SoqlError> {
        let mut left = self.and_expr()?;
        while self.eat_kw("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }
    fn and_expr(&mut self) -> Result<Expr, SoqlError> {
        let mut left = self.unary()?;
        while self.eat_kw("AND") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_sym("(") {
            let e = self.expr()?;
            if !self.eat_sym(")") {
                return Err(self.unexpected());
            }
            return Ok(e);
        }
        let field = self.name()?;
        let negated_in = self.is_kw("NOT") && {
            self.at += 1;
            true
        };
        if self.eat_kw("IN") {
            if !self.eat_sym("(") {
                return Err(self.unexpected());
            }
            let mut values = vec![self.literal()?];
            while self.eat_sym(",") {
                values.push(self.literal()?);
            }
            if !self.eat_sym(")") {
                return Err(self.unexpected());
            }
            return Ok(Expr::In(field, negated_in, values));
        }
        if negated_in {
            return Err(self.unexpected());
        }
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Op::Eq,
            Some(Tok::Sym("!=" | "<>")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIKE") => Op::Like,
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        Ok(Expr::Cmp(field, op, self.literal()?))
    }
}

fn is_reserved(word: &str) -> bool {
    [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "ORDER", "BY", "LIMIT", "OFFSET", "IN", "LIKE", "ASC", "DESC",
        "NULLS",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

pub fn parse(soql: &str) -> Result<Query, SoqlError> {
    let mut p = Parser { soql, toks: tokenize(soql)?, at: 0 };
    p.expect_kw("SELECT")?;
    let mut fields = Vec::new();
    let mut count = false;
    if p.is_kw("COUNT") && matches!(p.toks.get(p.at + 1), Some((Tok::Sym("("), _))) {
        p.at += 2;
        if !p.eat_sym(")") {
            return Err(p.unexpected());
        }
        count = true;
    } else {
        fields.push(p.name()?);
        while p.eat_sym(",") {
            fields.push(p.name()?);
        }
    }
    p.expect_kw("FROM")?;
    let object = p.name()?;
    let filter = if p.eat_kw("WHERE") { Some(p.expr()?) } else { None };
    let mut order = Vec::new();
    if p.eat_kw("ORDER") {
        p.expect_kw("BY")?;
        loop {
            let f = p.name()?;
            let desc = if p.eat_kw("DESC") {
                true
            } else {
                p.eat_kw("ASC");
                false
            };
            if p.eat_kw("NULLS") && !(p.eat_kw("FIRST") || p.eat_kw("LAST")) {
                return Err(p.unexpected());
            }
            order.push((f, desc));
            if !p.eat_sym(",") {
                break;
            }
        }
    }
    let limit = if p.eat_kw("LIMIT") { Some(p.number()?) } else { None };
    let offset = if p.eat_kw("OFFSET") { Some(p.number()?) } else { None };
    if p.peek().is_some() {
        return Err(p.unexpected());
    }
    Ok(Query { fields, count, object, filter, order, limit, offset })
}

/// Resolves written names to the object's canonical field names (case-insensitive), so
/// results use Salesforce's spelling. `known` is the object's field list.
pub fn check_fields(soql: &str, q: &Query, object: &str, known: &[&str]) -> Result<(), SoqlError> {
    let check = |f: &FieldRef| -> Result<(), SoqlError> {
        if canonical(known, &f.name).is_some() { Ok(()) } else { Err(SoqlError::invalid_field(soql, f, object)) }
    };
    q.fields.iter().try_for_each(check)?;
    q.order.iter().try_for_each(|(f, _)| check(f))?;
    fn walk(e: &Expr, check: &dyn Fn(&FieldRef) -> Result<(), SoqlError>) -> Result<(), SoqlError> {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => {
                walk(a, check)?;
                walk(b, check)
            }
            Expr::Not(a) => walk(a, check),
            Expr::Cmp(f, _, _) | Expr::In(f, _, _) => check(f),
        }
    }
    if let Some(f) = &q.filter {
        walk(f, &check)?;
    }
    Ok(())
}

pub fn canonical<'a>(known: &[&'a str], name: &str) -> Option<&'a str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

fn field<'v>(row: &'v Map<String, Value>, name: &str) -> &'v Value {
    row.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or(&Value::Null, |(_, v)| v)
}

fn compare(value: &Value, lit: &Literal) -> Option<std::cmp::Ordering> {
    match (value, lit) {
        (Value::Null, Literal::Null) => Some(std::cmp::Ordering::Equal),
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::String(a), Literal::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Number(a), Literal::Num(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn like(value: &str, pattern: &str) -> bool {
    fn go(v: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('%', rest)) => (0..=v.len()).any(|i| go(&v[i..], rest)),
            Some(('_', rest)) => !v.is_empty() && go(&v[1..], rest),
            Some((c, rest)) => v.first() == Some(c) && go(&v[1..], rest),
        }
    }
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    go(&v, &p)
}

pub fn matches(e: &Expr, row: &Map<String, Value>) -> bool {
    use std::cmp::Ordering::*;
    match e {
        Expr::And(a, b) => matches(a, row) && matches(b, row),
        Expr::Or(a, b) => matches(a, row) || matches(b, row),
        Expr::Not(a) => !matches(a, row),
        Expr::In(f, negated, values) => {
            let v = field(row, &f.name);
            values.iter().any(|l| compare(v, l) == Some(Equal)) != *negated
        }
        Expr::Cmp(f, op, lit) => {
            let v = field(row, &f.name);
            match op {
                Op::Like => matches!((v, lit), (Value::String(s), Literal::Str(p)) if like(s, p)),
                Op::Eq => compare(v, lit) == Some(Equal),
                Op::Ne => compare(v, lit) != Some(Equal),
                Op::Lt => compare(v, lit) == Some(Less),
                Op::Le => matches!(compare(v, lit), Some(Less | Equal)),
                Op::Gt => compare(v, lit) == Some(Greater),
                Op::Ge => matches!(compare(v, lit), Some(Greater | Equal)),
            }
        }
    }
}

/// Filters, orders and pages full rows; returns the matching rows.
pub fn run(q: &Query, rows: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    let mut hits: Vec<_> = rows.into_iter().filter(|r| q.filter.as_ref().is_none_or(|f| matches(f, r))).collect();
    if !q.order.is_empty() {
        hits.sort_by(|a, b| {
            for (f, desc) in &q.order {
                let ord = order_values(field(a, &f.name), field(b, &f.name));
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let offset = q.offset.unwrap_or(0);
    hits.into_iter().skip(offset).take(q.limit.unwrap_or(usize::MAX)).collect()
}

fn order_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Value::Null, Value::Null) => Equal,
        // Salesforce sorts nulls first in ascending order by default.
        (Value::Null, _) => Less,
        (_, Value::Null) => Greater,
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_the_lookup_lightbridge_sends() {
        let q = parse("SELECT Id, Name, BodyLength FROM StaticResource WHERE Name = 'walkme_lightning' AND NamespacePrefix = null LIMIT 1")
            .expect("parses");
        assert_eq!(q.fields.len(), 3);
        assert_eq!(q.object.name, "StaticResource");
        assert_eq!(q.limit, Some(1));
        let hit = row(json!({"Name": "WalkMe_Lightning", "NamespacePrefix": null}));
        let managed = row(json!({"Name": "walkme_lightning", "NamespacePrefix": "ns"}));
        assert!(matches(q.filter.as_ref().expect("where"), &hit), "string equality is case-insensitive");
        assert!(!matches(q.filter.as_ref().expect("where"), &managed), "NamespacePrefix = null excludes managed");
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let q = parse("select id from Organization limit 1").expect("parses");
        assert_eq!(q.limit, Some(1));
    }

    #[test]
    fn malformed_queries_get_a_caret_message() {
        let err = parse("SELECT Id FORM StaticResource").expect_err("typo");
        assert_eq!(err.code, "MALFORMED_QUERY");
        assert!(err.message.contains("ERROR at Row:1:Column:11"), "{}", err.message);
        assert!(err.message.contains("unexpected token: 'FORM'"), "{}", err.message);
    }

    #[test]
    fn like_in_or_not_and_order_work() {
        let q = parse(
            "SELECT Name FROM X WHERE (Name LIKE 'a%' OR Name IN ('zed')) AND NOT Name = 'abe' ORDER BY Name DESC",
        )
        .expect("parses");
        let rows = ["abe", "amy", "bob", "zed"].map(|n| row(json!({"Name": n}))).to_vec();
        let names: Vec<_> = run(&q, rows).iter().map(|r| r["Name"].clone()).collect();
        assert_eq!(names, vec![json!("zed"), json!("amy")]);
    }

    #[test]
    fn count_and_offset_parse() {
        let q = parse("SELECT COUNT() FROM StaticResource").expect("parses");
        assert!(q.count && q.fields.is_empty());
        let q = parse("SELECT Id FROM StaticResource LIMIT 10 OFFSET 5").expect("parses");
        assert_eq!((q.limit, q.offset), (Some(10), Some(5)));
    }

    #[test]
    fn unknown_fields_are_named() {
        let soql = "SELECT Id, Bogus FROM StaticResource";
        let q = parse(soql).expect("parses");
        let err = check_fields(soql, &q, "StaticResource", &["Id", "Name"]).expect_err("bogus");
        assert_eq!(err.code, "INVALID_FIELD");
        assert!(err.message.contains("No such column 'Bogus' on entity 'StaticResource'"));
    }
}
