//! The predicate language: a small SQL `WHERE` (parser and three-valued
//! evaluation).

use std::cmp::Ordering;

use sluice_sdk::Value;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Column(String),
    Cmp(Box<Expr>, CmpOp, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    IsNull(Box<Expr>, bool),
    In(Box<Expr>, Vec<Expr>, bool),
    Like(Box<Expr>, String, bool),
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Ident(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '\'' || ch == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match c.get(i) {
                    None => return Err("a string is not closed".into()),
                    Some(&q) if q == ch && c.get(i + 1) == Some(&ch) => {
                        text.push(ch);
                        i += 2;
                    }
                    Some(&q) if q == ch => {
                        i += 1;
                        break;
                    }
                    Some('\\') if i + 1 < c.len() => {
                        text.push(c[i + 1]);
                        i += 2;
                    }
                    Some(&x) => {
                        text.push(x);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(text));
        } else if ch == '`' {
            let end = c[i + 1..]
                .iter()
                .position(|&x| x == '`')
                .ok_or("a `name` is not closed")?;
            out.push(Tok::Ident(c[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if ch.is_ascii_digit()
            || (ch == '-' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < c.len()
                && (c[i].is_ascii_digit() || c[i] == '.' || c[i] == 'e' || c[i] == 'E')
            {
                i += 1;
            }
            out.push(Tok::Num(c[start..i].iter().collect()));
        } else if ch.is_alphanumeric() || ch == '_' || ch == '$' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '$') {
                i += 1;
            }
            out.push(Tok::Word(c[start..i].iter().collect()));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            let sym = match two.as_str() {
                "<=" => "<=",
                ">=" => ">=",
                "<>" => "<>",
                "!=" => "!=",
                _ => match ch {
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    _ => return Err(format!("unexpected `{ch}`")),
                },
            };
            i += sym.len();
            out.push(Tok::Sym(sym));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.at), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.peek_word(w);
        if yes {
            self.at += 1;
        }
        yes
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        let yes = matches!(self.toks.get(self.at), Some(Tok::Sym(x)) if *x == s);
        if yes {
            self.at += 1;
        }
        yes
    }
    fn expect_sym(&mut self, s: &str) -> Result<(), String> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(format!("expected `{s}` {}", self.here()))
        }
    }
    fn here(&self) -> String {
        match self.toks.get(self.at) {
            None => "at the end".into(),
            Some(t) => format!("near {}", show(t)),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat_word("OR") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.eat_word("AND") {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_word("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }
    fn predicate(&mut self) -> Result<Expr, String> {
        if self.eat_sym("(") {
            let e = self.or()?;
            self.expect_sym(")")?;
            return Ok(e);
        }
        let left = self.operand()?;
        let ops = [
            ("=", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<>", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ];
        for (s, op) in ops {
            if self.eat_sym(s) {
                let right = self.operand()?;
                return Ok(Expr::Cmp(Box::new(left), op, Box::new(right)));
            }
        }
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            if !self.eat_word("NULL") {
                return Err(format!("expected NULL after IS {}", self.here()));
            }
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let negated = self.eat_word("NOT");
        if self.eat_word("IN") {
            self.expect_sym("(")?;
            let mut list = vec![self.operand()?];
            while self.eat_sym(",") {
                list.push(self.operand()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::In(Box::new(left), list, negated));
        }
        if self.eat_word("LIKE") {
            return match self.toks.get(self.at).cloned() {
                Some(Tok::Str(p)) => {
                    self.at += 1;
                    Ok(Expr::Like(Box::new(left), p, negated))
                }
                _ => Err(format!("LIKE needs a 'pattern' {}", self.here())),
            };
        }
        if self.eat_word("BETWEEN") {
            let low = self.operand()?;
            if !self.eat_word("AND") {
                return Err(format!("expected AND in BETWEEN {}", self.here()));
            }
            let high = self.operand()?;
            return Ok(Expr::Between(
                Box::new(left),
                Box::new(low),
                Box::new(high),
                negated,
            ));
        }
        if negated {
            return Err(format!(
                "expected IN, LIKE or BETWEEN after NOT {}",
                self.here()
            ));
        }
        Ok(left)
    }
    fn operand(&mut self) -> Result<Expr, String> {
        let t = self
            .toks
            .get(self.at)
            .cloned()
            .ok_or("the predicate ends too early")?;
        self.at += 1;
        Ok(match t {
            Tok::Str(s) => Expr::Literal(Value::Text(s)),
            Tok::Num(n) => match n.parse::<i64>() {
                Ok(i) => Expr::Literal(Value::Int(i)),
                Err(_) => Expr::Literal(Value::Float64(
                    n.parse().map_err(|_| format!("`{n}` is not a number"))?,
                )),
            },
            Tok::Ident(c) => Expr::Column(c),
            Tok::Word(w) => match w.to_ascii_uppercase().as_str() {
                "NULL" => Expr::Literal(Value::Null),
                "TRUE" => Expr::Literal(Value::Int(1)),
                "FALSE" => Expr::Literal(Value::Int(0)),
                "AND" | "OR" | "NOT" | "IN" | "IS" | "LIKE" | "BETWEEN" => {
                    return Err(format!("expected a column or a value, found {w}"))
                }
                _ => Expr::Column(w),
            },
            Tok::Sym(s) => return Err(format!("expected a column or a value, found `{s}`")),
        })
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) | Tok::Num(w) => format!("`{w}`"),
        Tok::Ident(w) => format!("`{w}`"),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Sym(s) => format!("`{s}`"),
    }
}

/// Parses a predicate.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: tokenize(text)?,
        at: 0,
    };
    let e = p.or()?;
    if p.at < p.toks.len() {
        return Err(format!("unexpected {}", show(&p.toks[p.at])));
    }
    Ok(e)
}

impl Expr {
    /// The columns the predicate reads.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Column(c) = e {
                out.push(c.as_str());
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Literal(_) | Expr::Column(_) => {}
            Expr::Cmp(a, _, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Not(a) | Expr::IsNull(a, _) | Expr::Like(a, _, _) => a.walk(f),
            Expr::In(a, list, _) => {
                a.walk(f);
                list.iter().for_each(|x| x.walk(f));
            }
            Expr::Between(a, b, c, _) => {
                a.walk(f);
                b.walk(f);
                c.walk(f);
            }
        }
    }

    fn operand<'a>(&'a self, get: &dyn Fn(&str) -> Option<&'a Value>) -> Option<&'a Value> {
        match self {
            Expr::Literal(v) => Some(v),
            Expr::Column(c) => get(c),
            _ => None,
        }
    }

    /// SQL's three-valued result: `None` is unknown (a NULL was involved).
    pub fn eval<'a>(&'a self, get: &dyn Fn(&str) -> Option<&'a Value>) -> Option<bool> {
        let val = |e: &'a Expr| e.operand(get).filter(|v| !matches!(v, Value::Null));
        match self {
            Expr::Literal(_) | Expr::Column(_) => val(self).map(truthy),
            Expr::Cmp(a, op, b) => {
                let o = compare(val(a)?, val(b)?)?;
                Some(match op {
                    CmpOp::Eq => o == Ordering::Equal,
                    CmpOp::Ne => o != Ordering::Equal,
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Gt => o == Ordering::Greater,
                    CmpOp::Ge => o != Ordering::Less,
                })
            }
            Expr::And(a, b) => match (a.eval(get), b.eval(get)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Or(a, b) => match (a.eval(get), b.eval(get)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Expr::Not(a) => a.eval(get).map(|b| !b),
            Expr::IsNull(a, negated) => Some(val(a).is_none() != *negated),
            Expr::In(a, list, negated) => {
                let v = val(a)?;
                let mut unknown = false;
                for x in list {
                    match val(x) {
                        Some(x) if compare(v, x) == Some(Ordering::Equal) => return Some(!negated),
                        Some(_) => {}
                        None => unknown = true,
                    }
                }
                if unknown {
                    None
                } else {
                    Some(*negated)
                }
            }
            Expr::Like(a, pattern, negated) => {
                let text = text_of(val(a)?);
                Some(like(&text, pattern) != *negated)
            }
            Expr::Between(a, lo, hi, negated) => {
                let v = val(a)?;
                let inside = compare(v, val(lo)?)? != Ordering::Less
                    && compare(v, val(hi)?)? != Ordering::Greater;
                Some(inside != *negated)
            }
        }
    }
}

fn truthy(v: &Value) -> bool {
    number(v).is_some_and(|n| n != 0.0)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Uint(u) => Some(*u as f64),
        Value::Float32(f) => Some(*f as f64),
        Value::Float64(f) => Some(*f),
        Value::Decimal(s) => s.parse().ok(),
        _ => None,
    }
}

fn is_numeric(v: &Value) -> bool {
    matches!(
        v,
        Value::Int(_) | Value::Uint(_) | Value::Float32(_) | Value::Float64(_) | Value::Decimal(_)
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// A value as MySQL prints it, for text comparisons and LIKE.
fn text_of(v: &Value) -> String {
    match v {
        Value::Text(s) | Value::Decimal(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::Uint(u) => u.to_string(),
        Value::Float32(f) => f.to_string(),
        Value::Float64(f) => f.to_string(),
        Value::Date(d) => {
            let (y, m, d) = civil(*d as i64);
            format!("{y:04}-{m:02}-{d:02}")
        }
        Value::Timestamp(us) => {
            let secs = us.div_euclid(1_000_000);
            let micro = us.rem_euclid(1_000_000);
            let (y, m, d) = civil(secs.div_euclid(86_400));
            let s = secs.rem_euclid(86_400);
            let mut t = format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
                s / 3600,
                s / 60 % 60,
                s % 60
            );
            if micro != 0 {
                t.push_str(&format!(".{micro:06}"));
            }
            t
        }
        Value::Time(us) => {
            let sign = if *us < 0 { "-" } else { "" };
            let a = us.unsigned_abs() / 1_000_000;
            format!("{sign}{:02}:{:02}:{:02}", a / 3600, a / 60 % 60, a % 60)
        }
        Value::Null => String::new(),
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        return Some(x.cmp(y));
    }
    if let (Value::Uint(x), Value::Uint(y)) = (a, b) {
        return Some(x.cmp(y));
    }
    if is_numeric(a) || is_numeric(b) {
        // As MySQL does: text compared with a number is read as a number.
        let x = number(a).or_else(|| text_of(a).trim().parse().ok())?;
        let y = number(b).or_else(|| text_of(b).trim().parse().ok())?;
        return x.partial_cmp(&y);
    }
    let (mut x, mut y) = (text_of(a), text_of(b));
    // '2024-05-01' against a DATETIME means midnight.
    for (s, other) in [(&mut x, b), (&mut y, a)] {
        if s.len() == 10 && matches!(other, Value::Timestamp(_)) {
            s.push_str(" 00:00:00");
        }
    }
    Some(x.cmp(&y))
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    fn go(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && go(&t[1..], &p[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&t[1..], &p[2..]),
            Some(c) => t.first() == Some(c) && go(&t[1..], &p[1..]),
        }
    }
    go(&t, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, cols: &[(&str, Value)]) -> Option<bool> {
        let e = parse(text).unwrap();
        e.eval(&|c| cols.iter().find(|(n, _)| *n == c).map(|(_, v)| v))
    }

    #[test]
    fn three_valued_logic() {
        let row = [
            ("a", Value::Int(5)),
            ("b", Value::Null),
            ("s", Value::Text("paid".into())),
        ];
        assert_eq!(eval("a = 5", &row), Some(true));
        assert_eq!(eval("a > 5 OR s = 'paid'", &row), Some(true));
        assert_eq!(eval("b = 1", &row), None);
        assert_eq!(eval("NOT b = 1", &row), None);
        assert_eq!(eval("b = 1 OR a = 5", &row), Some(true));
        assert_eq!(eval("b = 1 AND a = 6", &row), Some(false));
        assert_eq!(eval("b IS NULL AND a IS NOT NULL", &row), Some(true));
        assert_eq!(eval("a IN (1, 2, 5)", &row), Some(true));
        assert_eq!(eval("a NOT IN (1, NULL)", &row), None);
        assert_eq!(
            eval("a BETWEEN 5 AND 7 AND a NOT BETWEEN 6 AND 9", &row),
            Some(true)
        );
        assert_eq!(eval("s LIKE 'p_i%' AND s NOT LIKE '%x'", &row), Some(true));
        assert_eq!(eval("(a = -5) OR (`s` <> 'paid')", &row), Some(false));
    }

    #[test]
    fn types_compare_like_mysql() {
        let row = [
            ("d", Value::Decimal("10.50".into())),
            ("day", Value::Date(19_844)), // 2024-05-01
            ("ts", Value::Timestamp(1_714_564_800_000_000)), // 2024-05-01 12:00:00
            ("n", Value::Text("42".into())),
        ];
        assert_eq!(eval("d > 10.4 AND d < 11", &row), Some(true));
        assert_eq!(eval("day = '2024-05-01'", &row), Some(true));
        assert_eq!(
            eval("ts > '2024-05-01' AND ts < '2024-05-02'", &row),
            Some(true)
        );
        assert_eq!(eval("ts = '2024-05-01 12:00:00'", &row), Some(true));
        assert_eq!(eval("n = 42", &row), Some(true));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse("a = ").unwrap_err().contains("ends too early"));
        assert!(parse("a = 'x").unwrap_err().contains("not closed"));
        assert!(parse("a IS 5").unwrap_err().contains("NULL"));
        assert!(parse("a = 1 b").unwrap_err().contains("unexpected"));
        assert_eq!(parse("a = 1").unwrap().columns(), vec!["a"]);
    }
}
