//! Keeping the docs true: the paths they name exist, and generated sections
//! (between `<!-- NAME:begin -->` and `<!-- NAME:end -->`) are rewritten in
//! place.
use std::path::Path;

use crate::Failure;

/// The documents whose backticked paths must exist.
const CHECKED_DOCS: &[&str] = &["docs/ARCHITECTURE.md", "README.md"];

/// Backticked text starting with one of these is a repository path.
const PATH_PREFIXES: &[&str] = &[
    "crates/",
    "boards/",
    "xtask/",
    "docs/",
    "tests/",
    "size-probe/",
    "fuzz/",
    ".ci/",
    ".cargo/",
];

/// Fails unless every path named in [`CHECKED_DOCS`] exists under `root`.
pub fn check_paths(root: &Path) -> Result<(), Failure> {
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in CHECKED_DOCS {
        let text = std::fs::read_to_string(root.join(doc))
            .map_err(|e| Failure(format!("cannot read {doc}: {e}")))?;
        for path in named_paths(&text) {
            checked += 1;
            if !root.join(path).exists() {
                missing.push(format!("{doc}: `{path}` does not exist"));
            }
        }
    }
    if missing.is_empty() {
        println!("{checked} paths named, all exist");
        Ok(())
    } else {
        for line in &missing {
            println!("{line}");
        }
        Err(Failure(format!(
            "{} path(s) in the docs do not exist: fix the doc or the tree",
            missing.len()
        )))
    }
}

/// Repository paths in inline code spans (`` `crates/ferry-core/src/lib.rs` ``),
/// outside fenced code blocks; a `:line` or `#anchor` suffix and a trailing
/// `/` are dropped.
pub fn named_paths(markdown: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Odd-numbered pieces between backticks are code spans.
        for span in line.split('`').skip(1).step_by(2) {
            let span = span.trim();
            if span.contains(char::is_whitespace)
                || !PATH_PREFIXES.iter().any(|p| span.starts_with(p))
            {
                continue;
            }
            let path = span.split([':', '#']).next().unwrap_or(span);
            let path = path.trim_end_matches('/');
            if !path.contains(['*', '<', '>', '{']) {
                paths.push(path);
            }
        }
    }
    paths
}

/// `text` with the lines between `<!-- NAME:begin -->` and
/// `<!-- NAME:end -->` replaced by `content`; `None` if the markers are missing.
pub fn replace_section(text: &str, name: &str, content: &str) -> Option<String> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text.get(start..)?.find(&end)?;
    let mut out = String::with_capacity(text.len() + content.len());
    out.push_str(text.get(..start)?);
    out.push('\n');
    out.push_str(content.trim_end());
    out.push('\n');
    out.push_str(text.get(stop..)?);
    Some(out)
}

/// Rewrites the `name` section of the file at `path` with `content`.
pub fn update_section(path: &Path, name: &str, content: &str) -> Result<(), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    let updated = replace_section(&text, name, content).ok_or_else(|| {
        Failure(format!(
            "{} has no `<!-- {name}:begin -->` ... `<!-- {name}:end -->` markers",
            path.display()
        ))
    })?;
    std::fs::write(path, updated)
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_paths_in_code_spans_only() {
        let md = "See `crates/ferry-core/src/lib.rs` and `boards/host/`.\n\
                  Not `cargo xtask test`, not `Server::poll`, not crates/x.\n\
                  ```\n`crates/in/a/fence.rs`\n```\n\
                  With a line: `crates/ferry-net/src/lib.rs:12`; a glob `crates/*/src`.";
        assert_eq!(
            named_paths(md),
            [
                "crates/ferry-core/src/lib.rs",
                "boards/host",
                "crates/ferry-net/src/lib.rs"
            ]
        );
    }

    #[test]
    fn replaces_a_section_and_keeps_the_rest() {
        let text = "# T\n<!-- size:begin -->\nold\nlines\n<!-- size:end -->\ntail\n";
        let out = replace_section(text, "size", "new\n").unwrap();
        assert_eq!(
            out,
            "# T\n<!-- size:begin -->\nnew\n<!-- size:end -->\ntail\n"
        );
        assert_eq!(replace_section(&out, "size", "new").unwrap(), out);
        assert!(replace_section(text, "bench", "x").is_none());
    }

    #[test]
    fn architecture_doc_paths_exist() {
        check_paths(&crate::cmd::root()).unwrap();
    }
}
