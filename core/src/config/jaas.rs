//! Just enough of the JAAS configuration grammar to read Java's `sasl.jaas.config` for the
//! PLAIN and SCRAM login modules.

use std::borrow::Cow;

use super::options::Rejection;

/// The credentials found in a `sasl.jaas.config` value.
#[derive(PartialEq, Eq)]
pub(crate) struct JaasCredentials {
    pub username: String,
    pub password: String,
}

pub(crate) const JAAS_EXPECTED: &str =
    "a JAAS entry `<PlainLoginModule|ScramLoginModule> required \
     username=\"...\" password=\"...\";` (other login modules are not supported)";

/// Parses `LoginModuleClass flag (name=value)* ;` where a value is a double-quoted string (with
/// backslash escapes) or a bare token, as Java's `JaasConfig` reads it.
pub(crate) fn parse_jaas(text: &str) -> Result<JaasCredentials, Rejection> {
    let err = || Rejection::Expected(Cow::Borrowed(JAAS_EXPECTED));
    let tokens = tokenize(text).ok_or_else(err)?;
    let mut it = tokens.into_iter().peekable();
    let Some(Token::Word(module)) = it.next() else {
        return Err(err());
    };
    let module_name = module.rsplit('.').next().unwrap_or(&module);
    if module_name != "PlainLoginModule" && module_name != "ScramLoginModule" {
        return Err(err());
    }
    match it.next() {
        Some(Token::Word(flag))
            if ["required", "requisite", "sufficient", "optional"]
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&flag)) => {}
        _ => return Err(err()),
    }
    let (mut username, mut password) = (None, None);
    loop {
        match it.next() {
            None | Some(Token::Semicolon) => break,
            Some(Token::Word(name)) => {
                if it.next() != Some(Token::Equals) {
                    return Err(err());
                }
                let value = match it.next() {
                    Some(Token::Word(v)) | Some(Token::Quoted(v)) => v,
                    _ => return Err(err()),
                };
                match name.as_str() {
                    "username" => username = Some(value),
                    "password" => password = Some(value),
                    _ => {}
                }
            }
            Some(_) => return Err(err()),
        }
    }
    // Only one login module per `sasl.jaas.config`, as in Java.
    if it.next().is_some() {
        return Err(err());
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(JaasCredentials { username, password }),
        _ => Err(err()),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Equals);
            }
            ';' => {
                chars.next();
                out.push(Token::Semicolon);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            'n' => s.push('\n'),
                            't' => s.push('\t'),
                            'r' => s.push('\r'),
                            other => s.push(other),
                        },
                        other => s.push(other),
                    }
                }
                out.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '=' | ';' | '"') {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(s: &str) -> Option<(String, String)> {
        parse_jaas(s).ok().map(|c| (c.username, c.password))
    }

    #[test]
    fn plain_and_scram() {
        let want = Some(("u".to_owned(), "p".to_owned()));
        assert_eq!(
            creds(
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#
            ),
            want
        );
        assert_eq!(
            creds("org.apache.kafka.common.security.scram.ScramLoginModule required\n  username=u\n  password=p"),
            want
        );
        assert_eq!(
            creds(r#"PlainLoginModule optional password="p\"q;" username="u=v" extra="x";"#),
            Some(("u=v".to_owned(), "p\"q;".to_owned()))
        );
    }

    #[test]
    fn rejected() {
        for bad in [
            "",
            "PlainLoginModule",
            "PlainLoginModule required username=\"u\";",
            "OAuthBearerLoginModule required username=\"u\" password=\"p\";",
            "PlainLoginModule maybe username=\"u\" password=\"p\";",
            "PlainLoginModule required username=\"u\" password=\"p",
            "PlainLoginModule required username \"u\" password=\"p\";",
            "PlainLoginModule required username=\"u\" password=\"p\"; PlainLoginModule required;",
        ] {
            assert!(parse_jaas(bad).is_err(), "{bad}");
        }
    }
}
