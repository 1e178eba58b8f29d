//! Prints the packages a cataloger finds in one file: `catalog_file PATH_IN_IMAGE FILE`.

fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let (Some(path_in_image), Some(file)) = (arguments.next(), arguments.next()) else {
        anyhow::bail!("usage: catalog_file PATH_IN_IMAGE FILE");
    };
    let content = std::fs::read(&file)?;
    let limits = palisade_scanner::Limits::default();
    let catalog = palisade_scanner::catalog_file_at(&path_in_image, &content, &limits)
        .unwrap_or_else(|| palisade_scanner::catalog_binary_at(&path_in_image, &content, &limits));
    for package in &catalog.packages {
        println!("{}\t{}\t{}", package.name, package.version, package.purl);
    }
    for issue in &catalog.issues {
        eprintln!("issue: {issue:?}");
    }
    Ok(())
}
