//! Plain text tables for the CLI: a header row and left-aligned columns, like `batctl`.

/// A table being built.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Add a row (missing cells print empty, extra ones are kept).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Rows added so far, without the header.
    pub fn len(&self) -> usize {
        self.rows.len().saturating_sub(1)
    }

    /// Whether only the header is there.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table as text, columns separated by two spaces, one line per row.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Split a rendered table back into trimmed cells (columns are separated by 2+ spaces);
/// tests use it to compare tables with `--json`.
pub fn parse_rendered(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_parse_back() {
        let mut t = Table::new(&["IFACE", "MAC"]);
        t.row(vec!["wlan0".into(), "02:00:00:00:00:01".into()]);
        t.row(vec!["mesh-long0".into(), "-".into()]);
        let text = t.render();
        assert_eq!(
            text,
            "IFACE       MAC\nwlan0       02:00:00:00:00:01\nmesh-long0  -\n"
        );
        assert_eq!(t.len(), 2);
        let cells = parse_rendered(&text);
        assert_eq!(cells[2], vec!["mesh-long0".to_string(), "-".to_string()]);
    }
}
