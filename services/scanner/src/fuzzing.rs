//! Entry points for the cargo-fuzz targets in `fuzz/`, kept here so unit tests run them too.

use crate::catalog::catalog_file_at;
use crate::layer::ImageFilesystem;
use crate::limits::Limits;

/// Bounds small enough that a fuzzer explores structure rather than allocating.
fn fuzz_limits() -> Limits {
    Limits {
        max_layer_bytes: 8 * 1024 * 1024,
        max_image_bytes: 16 * 1024 * 1024,
        max_entries_per_layer: 10_000,
        max_catalog_file_bytes: 1024 * 1024,
        max_inspected_binary_bytes: 1024 * 1024,
        ..Limits::default()
    }
}

/// Walks arbitrary bytes as an image layer (gzip, zstd or bare tar) and catalogs what it
/// finds. It may return an error; it must never panic, hang or allocate without bound.
pub fn fuzz_layer(data: &[u8]) {
    let mut filesystem = ImageFilesystem::new(fuzz_limits());
    let mut reader = data;
    if filesystem.apply_layer("fuzz", &mut reader).is_ok() {
        let mut second = data;
        let _ = filesystem.apply_layer("fuzz-again", &mut second);
    }
    let _ = filesystem.finish();
}

/// Feeds arbitrary bytes to every cataloger.
pub fn fuzz_catalogers(data: &[u8]) {
    let limits = fuzz_limits();
    for path in [
        "var/lib/dpkg/status",
        "lib/apk/db/installed",
        "var/lib/rpm/rpmdb.sqlite",
        "var/lib/rpm/Packages",
        "usr/lib/sysimage/rpm/Packages.db",
        "app/Cargo.lock",
        "app/go.mod",
        "app/package-lock.json",
        "app/yarn.lock",
        "app/pnpm-lock.yaml",
        "app/node_modules/x/package.json",
        "x.dist-info/METADATA",
        "app/requirements.txt",
        "app/poetry.lock",
        "app/Pipfile.lock",
        "app/app.jar",
        "app/pom.xml",
        "specifications/x.gemspec",
        "app/Gemfile.lock",
        "app/composer.lock",
        "app/x.deps.json",
        "etc/os-release",
    ] {
        let _ = catalog_file_at(path, data, &limits);
    }
    let _ = crate::catalog::catalog_binary_at("usr/bin/x", data, &limits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_entry_points_survive_garbage_and_truncations() {
        let samples: [&[u8]; 5] = [
            b"",
            &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3],
            &[0x28, 0xb5, 0x2f, 0xfd, 0, 0],
            &[0u8; 1024],
            b"\x7fELF\x02\x01\x01\0\xff Go buildinf:\x08\x02",
        ];
        for sample in samples {
            fuzz_layer(sample);
            fuzz_catalogers(sample);
        }
    }
}
