//! The package a Ray job takes with it, as its runtime environment's `working_dir`: one zip
//! holding the project's archive and the lockstep binary, so that the worker needs no shared
//! filesystem and no lockstep of its own. It is named by its content
//! (`gcs://_ray_pkg_<key>.zip`, the form of name Ray gives the packages it uploads itself),
//! so a cluster is sent each pair of binary and archive once.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::client::JobsClient;
use super::error::RayError;
use crate::support::cache::content_key;
use crate::support::digest::{hex, sha256_file};

/// The name the binary has in the job's working directory.
pub const BINARY_NAME: &str = "lockstep";

/// The largest request body Ray's dashboard reads (`DASHBOARD_CLIENT_MAX_SIZE`).
const MAX_PACKAGE: u64 = 100 << 20;

/// What names a package: a new layout of the zip is a new schema.
#[derive(Serialize)]
struct PackageKey<'a> {
    schema: u32,
    binary: &'a str,
    archive_name: &'a str,
    archive: &'a str,
}

/// A job's package: the files that go in it and the name its content gives it.
#[derive(Debug, Clone)]
pub struct JobPackage {
    binary: PathBuf,
    archive: PathBuf,
    archive_name: String,
    name: String,
}

impl JobPackage {
    /// The package of `binary` (as `lockstep`) and `archive` (as `archive_name`), named by
    /// the digests of both.
    pub fn new(binary: &Path, archive: &Path, archive_name: &str) -> Result<JobPackage, RayError> {
        let digest = |path: &Path| {
            sha256_file(path)
                .map(|(d, _)| hex(&d))
                .map_err(|source| RayError::Package { path: path.to_path_buf(), source })
        };
        let (binary_digest, archive_digest) = (digest(binary)?, digest(archive)?);
        let key = PackageKey { schema: 1, binary: &binary_digest, archive_name, archive: &archive_digest };
        Ok(JobPackage {
            binary: binary.to_path_buf(),
            archive: archive.to_path_buf(),
            archive_name: archive_name.to_string(),
            name: format!("_ray_pkg_{}.zip", content_key(&key)),
        })
    }

    /// The package's name in the cluster's store.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URI a runtime environment's `working_dir` names it by.
    pub fn uri(&self) -> String {
        format!("gcs://{}", self.name)
    }

    /// The archive's name in the job's working directory.
    pub fn archive_name(&self) -> &str {
        &self.archive_name
    }

    /// Make sure the cluster holds the package: uploaded unless it is there already. Whether
    /// it was uploaded.
    pub fn stage(&self, client: &JobsClient) -> Result<bool, RayError> {
        if client.has_package(&self.name)? {
            return Ok(false);
        }
        let zip = tempfile::Builder::new()
            .prefix(".lockstep-ray-")
            .suffix(".zip")
            .tempfile()
            .map_err(|source| RayError::Package { path: std::env::temp_dir(), source })?;
        let io_error = |source| RayError::Package { path: zip.path().to_path_buf(), source };
        self.write_zip(zip.as_file()).map_err(io_error)?;
        let size = zip.as_file().metadata().map_err(io_error)?.len();
        if size >= MAX_PACKAGE {
            return Err(RayError::PackageTooLarge { binary: self.binary.clone(), mib: size.div_ceil(1 << 20) });
        }
        client.upload_package(&self.name, zip.path())?;
        Ok(true)
    }

    /// Write the zip: the binary (executable, compressed) and the archive (stored: it is
    /// compressed already), with fixed times, so equal inputs make equal bytes.
    pub fn write_zip(&self, out: &File) -> io::Result<()> {
        let mut zip = ZipWriter::new(BufWriter::new(out));
        let options = SimpleFileOptions::default().last_modified_time(DateTime::DEFAULT);
        let binary =
            options.compression_method(CompressionMethod::Deflated).compression_level(Some(1)).unix_permissions(0o755);
        add_file(&mut zip, BINARY_NAME, &self.binary, binary)?;
        let archive = options.compression_method(CompressionMethod::Stored).unix_permissions(0o644);
        add_file(&mut zip, &self.archive_name, &self.archive, archive)?;
        zip.finish().map_err(io::Error::other)?.flush()
    }
}

/// Copy the file at `path` into the zip as `name`.
fn add_file<W: Write + io::Seek>(
    zip: &mut ZipWriter<W>,
    name: &str,
    path: &Path,
    options: SimpleFileOptions,
) -> io::Result<()> {
    let large = File::open(path)?.metadata()?.len() >= u32::MAX as u64;
    zip.start_file(name, options.large_file(large)).map_err(io::Error::other)?;
    io::copy(&mut BufReader::new(File::open(path)?), zip)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn inputs(dir: &Path, binary: &[u8]) -> (PathBuf, PathBuf) {
        let (bin, archive) = (dir.join("lockstep-bin"), dir.join("a.tar.gz"));
        std::fs::write(&bin, binary).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(&archive, b"archive bytes").unwrap();
        (bin, archive)
    }

    #[test]
    fn the_name_follows_the_content_of_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, archive) = inputs(dir.path(), b"binary one");
        let one = JobPackage::new(&bin, &archive, "t.tar.gz").unwrap();
        assert!(one.name().starts_with("_ray_pkg_") && one.name().ends_with(".zip"), "{}", one.name());
        assert_eq!(one.uri(), format!("gcs://{}", one.name()));
        assert_eq!(JobPackage::new(&bin, &archive, "t.tar.gz").unwrap().name(), one.name());
        assert_ne!(JobPackage::new(&bin, &archive, "u.tar.gz").unwrap().name(), one.name());
        std::fs::write(&bin, b"binary two").unwrap();
        assert_ne!(JobPackage::new(&bin, &archive, "t.tar.gz").unwrap().name(), one.name());
    }

    #[test]
    fn the_zip_holds_an_executable_binary_and_the_archive_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, archive) = inputs(dir.path(), &b"\x7fELF binary ".repeat(1000));
        let package = JobPackage::new(&bin, &archive, "t.tar.gz").unwrap();
        let write = |name: &str| {
            let path = dir.path().join(name);
            package.write_zip(&File::create(&path).unwrap()).unwrap();
            std::fs::read(path).unwrap()
        };
        let bytes = write("one.zip");
        assert_eq!(write("two.zip"), bytes, "equal inputs, equal bytes");
        let mut zip = zip::ZipArchive::new(io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(names, [BINARY_NAME, "t.tar.gz"]);
        let mut entry = zip.by_name(BINARY_NAME).unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755), "Ray restores the mode, so it runs");
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, std::fs::read(&bin).unwrap());
        drop(entry);
        let entry = zip.by_name("t.tar.gz").unwrap();
        assert_eq!(entry.compression(), CompressionMethod::Stored);
    }

    #[test]
    fn a_missing_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, _) = inputs(dir.path(), b"b");
        let err = JobPackage::new(&bin, &dir.path().join("none.tar.gz"), "n.tar.gz").unwrap_err();
        assert!(err.to_string().contains("none.tar.gz"), "{err}");
    }
}
