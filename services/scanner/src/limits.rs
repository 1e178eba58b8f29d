//! Bounds that keep a hostile image from exhausting memory, disk or time.

/// Every bound the layer walker and the catalogers enforce. The defaults fit real images
/// (the largest rpm databases are a few hundred MiB) with room to spare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Decompressed bytes of one layer.
    pub max_layer_bytes: u64,
    /// Decompressed bytes of all layers together.
    pub max_image_bytes: u64,
    /// Entries in one layer.
    pub max_entries_per_layer: u64,
    /// Bytes of one path (after PAX / GNU long-name extension).
    pub max_path_bytes: usize,
    /// Components of one path.
    pub max_path_depth: usize,
    /// Bytes of one PAX or GNU long-name/long-link extension header.
    pub max_extension_header_bytes: u64,
    /// Bytes of one package database or metadata file kept in memory for a cataloger.
    pub max_catalog_file_bytes: u64,
    /// Bytes of one executable or archive (jar) read into memory for inspection.
    pub max_inspected_binary_bytes: u64,
    /// Bytes of captured content held at once across the whole image.
    pub max_captured_total_bytes: u64,
    /// Symlinks followed while resolving one path.
    pub max_symlink_hops: usize,
    /// Nesting of archives inside archives (jar in war in layer).
    pub max_archive_depth: usize,
    /// Entries read from one archive (jar, war).
    pub max_archive_entries: usize,
    /// Packages taken from one file before the rest are refused.
    pub max_packages_per_file: usize,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        const GIB: u64 = 1024 * MIB;
        Limits {
            max_layer_bytes: 16 * GIB,
            max_image_bytes: 64 * GIB,
            max_entries_per_layer: 2_000_000,
            max_path_bytes: 4096,
            max_path_depth: 128,
            max_extension_header_bytes: 64 * 1024,
            max_catalog_file_bytes: 512 * MIB,
            max_inspected_binary_bytes: 512 * MIB,
            max_captured_total_bytes: 2 * GIB,
            max_symlink_hops: 40,
            max_archive_depth: 4,
            max_archive_entries: 200_000,
            max_packages_per_file: 500_000,
        }
    }
}
