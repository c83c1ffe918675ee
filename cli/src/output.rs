//! Writing a command's result: aligned text tables for people, one JSON object for scripts.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::error::CliError;

/// A command's output, written to stdout in one go when the command is done.
#[derive(Debug, Default)]
pub struct Output {
    text: String,
}

impl Output {
    /// A line of text.
    pub fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// A table: a header row and rows, each column padded to its widest cell, with `indent`
    /// spaces before every line. Columns listed in `right` are right-aligned.
    pub fn table(&mut self, indent: usize, header: &[&str], rows: &[Vec<String>], right: &[usize]) {
        let cols = header.len();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut emit = |cells: &mut dyn Iterator<Item = &str>| {
            let mut line = " ".repeat(indent);
            for (i, cell) in cells.enumerate().take(cols) {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                if right.contains(&i) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < cols {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            self.line(line.trim_end());
        };
        emit(&mut header.iter().copied());
        for row in rows {
            emit(&mut row.iter().map(String::as_str));
        }
    }

    /// Writes everything to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(self.text.as_bytes())?;
        w.flush()
    }

    /// Writes everything to stdout.
    pub fn print(self) -> Result<(), CliError> {
        self.write_to(&mut std::io::stdout().lock())?;
        Ok(())
    }
}

/// Writes one JSON object to stdout: indented on a terminal, one line otherwise.
pub fn print_json(value: &Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let text = if out.is_terminal() {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| CliError::Output(e.into()))?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Node ids as `1,2,3`, or `-` for none.
pub fn id_list(ids: &[i32]) -> String {
    if ids.is_empty() {
        "-".to_owned()
    } else {
        ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut out = Output::default();
        out.table(
            2,
            &["ID", "NAME", "X"],
            &[
                vec!["1".into(), "a".into(), "x".into()],
                vec!["100".into(), "longer".into(), String::new()],
            ],
            &[0],
        );
        assert_eq!(
            out.text,
            "   ID  NAME    X\n    1  a       x\n  100  longer\n"
        );
    }

    #[test]
    fn id_lists() {
        assert_eq!(id_list(&[]), "-");
        assert_eq!(id_list(&[3, 1]), "3,1");
    }
}
