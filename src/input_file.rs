//! Reading the files a user hands in (configs, sweep files, parameters, checkpoints, walker
//! files) with a size cap, and only when they are regular files: `/dev/zero` would be read
//! until memory runs out, and a FIFO would block forever.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::Error;

/// Most bytes read from a JSON input file: far above any real config, parameters file or
/// checkpoint, far below a machine's memory.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// The text of `path`, at most `MAX_INPUT_BYTES`; `what` names it in errors ("config").
pub fn read_text(path: &Path, what: &str) -> Result<String, Error> {
    let bytes = read_bytes(path, what, MAX_INPUT_BYTES)?;
    String::from_utf8(bytes).map_err(|_| {
        Error::input(format!(
            "cannot read {what} {}: it is not UTF-8 text",
            path.display()
        ))
    })
}

/// The bytes of `path`, refused when it is not a regular file or holds more than `limit`.
pub fn read_bytes(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, Error> {
    let shown = path.display();
    let cannot = |why: String| Error::input(format!("cannot read {what} {shown}: {why}"));
    // Checked before opening: opening a FIFO for reading blocks until a writer appears.
    let meta = std::fs::metadata(path).map_err(|e| cannot(e.to_string()))?;
    if !meta.is_file() {
        return Err(cannot(format!(
            "{} is not a regular file",
            file_kind(&meta)
        )));
    }
    let too_large = || {
        Error::input(format!(
            "{what} {shown} is larger than {}, the most this program reads from such a file",
            human_bytes(limit)
        ))
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let file = File::open(path).map_err(|e| cannot(e.to_string()))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may have grown since the check: read one byte past the limit to notice.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() { "a directory" } else { "it" }
}

/// "64 MiB", "1.5 KiB", "12 bytes".
fn human_bytes(bytes: u64) -> String {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, size) in units {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if value.fract() == 0.0 {
                format!("{value:.0} {name}")
            } else {
                format!("{value:.1} {name}")
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_oversized_files_are_refused_with_the_limit() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = read_text(&dir, "config").unwrap_err().to_string();
        assert!(err.contains("a directory is not a regular file"), "{err}");
        #[cfg(unix)]
        {
            let err = read_text(Path::new("/dev/zero"), "config")
                .unwrap_err()
                .to_string();
            assert!(err.contains("a device is not a regular file"), "{err}");
        }
        let big = dir.join("big.json");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_INPUT_BYTES + 1)
            .unwrap();
        let err = read_text(&big, "config").unwrap_err().to_string();
        assert!(err.contains("larger than 64 MiB"), "{err}");
        let small = dir.join("small.bin");
        std::fs::write(&small, [1u8; 10]).unwrap();
        assert_eq!(read_bytes(&small, "walker file", 10).unwrap().len(), 10);
        let err = read_bytes(&small, "walker file", 9)
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than 9 bytes"), "{err}");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
