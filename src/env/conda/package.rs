//! The conda package cache (`conda-pkgs-v1/`): each archive downloaded once, verified against
//! its sha256 (or md5), and unpacked into a directory published by atomic rename.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rattler_digest::Sha256;
use rattler_digest::digest::Digest;

use super::super::EnvError;
use super::super::lock::{CondaPackage, check_file_name};
use super::channel::agent;
use crate::support::cache::{Cache, CacheBucket, content_key};
use crate::support::progress::Progress;

/// The unpacked package of `pkg`: from the cache, or downloaded, verified and unpacked now.
pub fn unpacked(cache: &Cache, pkg: &CondaPackage, progress: &Progress) -> Result<PathBuf, EnvError> {
    // A lock read from a record is checked when it is read; a channel's repodata is not, and
    // these become the names of the download, the cache entry and the `conda-meta` file.
    for (field, value) in
        [("filename", &pkg.filename), ("name", &pkg.name), ("version", &pkg.version), ("build", &pkg.build)]
    {
        check_file_name(field, value).map_err(|message| package_err(pkg, message))?;
    }
    let bucket = cache.bucket(CacheBucket::CondaPackages)?;
    let stem = archive_stem(&pkg.filename);
    let key = format!("{stem}-{}", &content_key(&(&pkg.url, &pkg.sha256, &pkg.md5))[..16]);
    let dir = bucket.join(&key);
    if dir.join("info/index.json").is_file() {
        return Ok(dir);
    }
    let _lock = cache.lock(CacheBucket::CondaPackages, &key)?;
    if dir.join("info/index.json").is_file() {
        return Ok(dir);
    }
    let tmp = tempfile::Builder::new().prefix(".unpack-").tempdir_in(&bucket).map_err(EnvError::io(&bucket))?;
    let archive = tmp.path().join(&pkg.filename);
    download(pkg, &archive, progress)?;
    let content = tmp.path().join("content");
    extract(&archive, &content).map_err(|e| package_err(pkg, format!("cannot unpack: {e}")))?;
    if !content.join("info/index.json").is_file() {
        return Err(package_err(pkg, "the archive has no info/index.json".into()));
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(EnvError::io(&dir))?;
    }
    fs::rename(&content, &dir).map_err(EnvError::io(&dir))?;
    Ok(dir)
}

fn package_err(pkg: &CondaPackage, message: String) -> EnvError {
    EnvError::Package { url: pkg.url.clone(), message }
}

/// The file name without `.conda` or `.tar.bz2`.
fn archive_stem(filename: &str) -> &str {
    filename.strip_suffix(".conda").or_else(|| filename.strip_suffix(".tar.bz2")).unwrap_or(filename)
}

/// Download (or copy, for `file://`) the archive to `to`, checking its digest.
fn download(pkg: &CondaPackage, to: &Path, progress: &Progress) -> Result<(), EnvError> {
    let url = url::Url::parse(&pkg.url).map_err(|e| package_err(pkg, e.to_string()))?;
    let mut reader: Box<dyn Read> = if url.scheme() == "file" {
        let path = url.to_file_path().map_err(|_| package_err(pkg, "not a local path".into()))?;
        Box::new(File::open(&path).map_err(|e| package_err(pkg, e.to_string()))?)
    } else {
        let response = agent().get(url.as_str()).call().map_err(|e| package_err(pkg, e.to_string()))?;
        if response.status().as_u16() != 200 {
            return Err(package_err(pkg, format!("HTTP {}", response.status().as_u16())));
        }
        Box::new(response.into_body().into_reader())
    };
    let mut file = File::create(to).map_err(EnvError::io(to))?;
    let mut sha = Sha256::new();
    let mut md5 = rattler_digest::Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(package_err(pkg, format!("download interrupted: {e}"))),
        };
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(EnvError::io(to))?;
        progress.advance(n as u64);
    }
    let (sha, md5) = (crate::support::digest::hex(&sha.finalize()), crate::support::digest::hex(&md5.finalize()));
    match (&pkg.sha256, &pkg.md5) {
        (Some(want), _) if !want.eq_ignore_ascii_case(&sha) => {
            Err(package_err(pkg, format!("sha256 mismatch: the channel says {want}, the file has {sha}")))
        }
        (None, Some(want)) if !want.eq_ignore_ascii_case(&md5) => {
            Err(package_err(pkg, format!("md5 mismatch: the channel says {want}, the file has {md5}")))
        }
        _ => Ok(()),
    }
}

/// Unpack a `.tar.bz2` or `.conda` archive into `dir`.
pub fn extract(archive: &Path, dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let name = archive.file_name().unwrap_or_default().to_string_lossy();
    if name.ends_with(".tar.bz2") {
        let file = io::BufReader::new(File::open(archive)?);
        return unpack_tar(bzip2::read::BzDecoder::new(file), dir);
    }
    if name.ends_with(".conda") {
        // A zip (stored) of metadata.json, info-*.tar.zst and pkg-*.tar.zst.
        let mut zip = zip::ZipArchive::new(File::open(archive)?).map_err(io::Error::other)?;
        for i in 0..zip.len() {
            let entry = zip.by_index(i).map_err(io::Error::other)?;
            if entry.name().is_ok_and(|n| n.ends_with(".tar.zst")) {
                let decoder = ruzstd::decoding::StreamingDecoder::new(entry).map_err(io::Error::other)?;
                unpack_tar(decoder, dir)?;
            }
        }
        return Ok(());
    }
    Err(io::Error::other(format!("{name} is neither a .conda nor a .tar.bz2 archive")))
}

fn unpack_tar(reader: impl Read, dir: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(false);
    archive.set_overwrite(true);
    archive.unpack(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_whose_names_are_paths_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("cache"));
        let archive = dir.path().join("x-1-0.conda");
        fs::write(&archive, "not a package").unwrap();
        let outside = dir.path().join("x");
        fs::create_dir(&outside).unwrap();
        let good = CondaPackage {
            name: "x".into(),
            version: "1".into(),
            build: "0".into(),
            build_number: 0,
            subdir: "noarch".into(),
            channel: "c".into(),
            url: url::Url::from_file_path(&archive).unwrap().to_string(),
            filename: "x-1-0.conda".into(),
            sha256: None,
            md5: None,
            depends: vec![],
            noarch: None,
        };
        let progress = Progress::start("test");
        for pkg in [
            CondaPackage { filename: "../../../x/EVIL.conda".into(), ..good.clone() },
            CondaPackage { name: "../../../x/EVIL".into(), ..good.clone() },
            CondaPackage { build: "..".into(), ..good.clone() },
        ] {
            let err = unpacked(&cache, &pkg, &progress).unwrap_err();
            assert!(err.to_string().contains("it must be a single file name"), "{err}");
            assert!(matches!(err, EnvError::Package { .. }), "bad input, exit 2: {err:?}");
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "nothing is written outside the cache");
        let err = unpacked(&cache, &good, &progress).unwrap_err();
        assert!(err.to_string().contains("cannot unpack"), "a good name gets as far as unpacking: {err}");
    }
}
