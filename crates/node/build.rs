//! Embeds the built web apps (`web/dist`, committed) into the node, each
//! file with a gzip copy made here, so the node serves the pages with no
//! Node.js or npm at run time (docs/apps.md).

use std::io::Write;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("../../web/dist");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut paths = Vec::new();
    files(&dist, &mut paths);
    paths.sort();
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, path) in paths.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .strip_prefix(&dist)
            .expect("under dist")
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(path).expect("readable asset");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).expect("gzip in memory");
        let gz_path = out_dir.join(format!("asset-{i}.gz"));
        std::fs::write(&gz_path, gz.finish().expect("gzip in memory")).expect("OUT_DIR writable");
        table.push_str(&format!(
            "    Asset {{ path: {name:?}, content_type: {:?}, body: include_bytes!({:?}), gzip: include_bytes!({:?}) }},\n",
            content_type(path),
            path.canonicalize().expect("exists").display().to_string(),
            gz_path.display().to_string(),
        ));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("web_assets.rs"), table).expect("OUT_DIR writable");
}
