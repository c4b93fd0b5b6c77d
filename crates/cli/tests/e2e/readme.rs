//! The README's walkthroughs, run as written: the `sh` blocks of each
//! self-contained section, in order, in bash with `set -euo pipefail`,
//! with only the build line, the scratch directory and the port changed.
//! A command the README shows refused (followed by a `# error: <status>:
//! <code>: …` line) must fail, and its output must name that code.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// The walkthroughs that start their own node (the FHIR one needs the
/// demo running and is exercised by `records::the_demo_seeds_…`).
const SECTIONS: &[&str] = &[
    "## Patient-controlled records in five minutes",
    "## Connected devices and adherence",
    "## The oncology trial in five minutes",
    "## Four organizations, one log",
    "## Verifiably sourced datasets",
    "## Paying patients who share data with research",
];

/// The `sh` blocks between `heading` and the next `## ` heading.
fn blocks(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    let rest = &readme[start + heading.len() + 2..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                out.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "{heading}: an unclosed code block");
    out
}

/// Wraps each command the README shows refused so that the script
/// checks the refusal: it must fail and print the code.
fn expect_refusals(script: &str) -> String {
    let lines: Vec<&str> = script.lines().collect();
    let mut out: Vec<String> = Vec::new();
    // Where the command being read started in `out`.
    let mut command_start = 0;
    for (i, line) in lines.iter().enumerate() {
        let continues = i > 0 && lines[i - 1].trim_end().ends_with('\\');
        if let Some(error) = line.trim_start().strip_prefix("# error: ") {
            let code = error
                .split(": ")
                .nth(1)
                .unwrap_or_else(|| panic!("no code in {line:?}"));
            let command = out.split_off(command_start).join("\n");
            out.push(format!(
                "if refusal=$({command} 2>&1); then echo \"README: expected a refusal ({code}) from: {}\" >&2; exit 1; fi\n\
                 grep -qF -- '{code}' <<<\"$refusal\" || {{ echo \"README: expected {code}, got: $refusal\" >&2; exit 1; }}",
                command.replace('"', "'").replace('\n', " ")
            ));
            command_start = out.len();
            continue;
        }
        if !continues {
            command_start = out.len();
        }
        out.push((*line).to_owned());
    }
    out.join("\n") + "\n"
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_section(heading: &str, dir: &Path) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut script = blocks(&readme, heading).join("");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_hygeia")).parent().unwrap();
    script = script.replace(
        "cargo build --release && export PATH=\"$PWD/target/release:$PATH\"",
        &format!("export PATH=\"{}:$PATH\"", bin_dir.display()),
    );
    assert!(
        script.contains(&bin_dir.display().to_string()) || !script.contains("cargo build"),
        "{heading}: the build line changed; update this test"
    );
    for scratch in [
        "/tmp/hygeia-walk",
        "/tmp/hygeia-devices",
        "/tmp/hygeia-trial",
        "/tmp/hygeia-network",
        "/tmp/hygeia-datasets",
        "/tmp/hygeia-sharing",
    ] {
        script = script.replace(scratch, &dir.display().to_string());
    }
    for port in [
        "7100", "7101", "7102", "7103", "7104", "7201", "7202", "7203", "7204", "7205", "7211",
        "7212", "7213", "7214", "7215",
    ] {
        script = script.replace(
            &format!("127.0.0.1:{port}"),
            &format!("127.0.0.1:{}", free_port()),
        );
    }
    let script = format!(
        "set -euo pipefail\nexport PATH=\"{}:$PATH\"\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}",
        bin_dir.display(),
        expect_refusals(&script)
    );
    // A walkthrough that waits for something that never comes fails here
    // with its output, instead of holding the test run until CI's limit.
    let output = Command::new("timeout")
        .args(["--kill-after=10", "600", "bash", "-c"])
        .arg(&script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{heading}: the walkthrough failed\n--- stdout\n{}\n--- stderr\n{}\n--- script\n{script}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

#[test]
fn the_readme_walkthroughs_run_as_written() {
    for heading in SECTIONS {
        let dir = tempfile::tempdir().unwrap();
        run_section(heading, dir.path());
    }
}

#[test]
fn a_refusal_the_readme_shows_is_checked() {
    let script = "hygeia a \\\n  --b\n# error: 403: access_denied: denied\necho next\n";
    let wrapped = expect_refusals(script);
    assert!(
        wrapped.starts_with("if refusal=$(hygeia a \\\n  --b 2>&1)"),
        "{wrapped}"
    );
    assert!(wrapped.contains("grep -qF -- 'access_denied'"), "{wrapped}");
    assert!(wrapped.ends_with("echo next\n"), "{wrapped}");
}
