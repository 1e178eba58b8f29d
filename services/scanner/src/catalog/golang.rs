//! go.mod files and Go binaries' embedded module information.

use super::{CatalogContext, FileCatalog, purl};
use crate::sbom::{Package, PackageKind};

pub(super) fn go_package(context: &CatalogContext<'_>, module: &str, version: &str) -> Package {
    let (namespace, name) = module.rsplit_once('/').unwrap_or(("", module));
    let purl = purl::build("golang", Some(namespace), name, version, &[]);
    context.package(PackageKind::Go, module, version, purl)
}

/// `require` directives, with `replace` directives applied as the go command would.
pub(super) fn catalog_go_mod(content: &[u8], context: &CatalogContext<'_>) -> FileCatalog {
    let text = String::from_utf8_lossy(content);
    let mut catalog = FileCatalog::default();
    let mut requires: Vec<(String, String)> = Vec::new();
    let mut replaces: Vec<(String, Option<String>, String, String)> = Vec::new();
    let mut block: Option<String> = None;
    for raw_line in text.lines() {
        let line = raw_line.split("//").next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if line == ")" {
            block = None;
            continue;
        }
        let (directive, rest) = match &block {
            Some(directive) => (directive.clone(), line),
            None => {
                let (directive, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                let rest = rest.trim();
                if rest == "(" {
                    block = Some(directive.to_string());
                    continue;
                }
                (directive.to_string(), rest)
            }
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        match (directive.as_str(), fields.as_slice()) {
            ("require", [module, version, ..]) => {
                requires.push(((*module).to_string(), (*version).to_string()));
            }
            ("replace", [old, "=>", new, new_version]) => replaces.push((
                (*old).to_string(),
                None,
                (*new).to_string(),
                (*new_version).to_string(),
            )),
            ("replace", [old, old_version, "=>", new, new_version]) => replaces.push((
                (*old).to_string(),
                Some((*old_version).to_string()),
                (*new).to_string(),
                (*new_version).to_string(),
            )),
            _ => {}
        }
    }
    for (module, version) in requires {
        let replacement = replaces.iter().find(|(old, old_version, _, _)| {
            *old == module && old_version.as_deref().is_none_or(|v| v == version)
        });
        let (final_module, final_version) = match replacement {
            Some((_, _, new, new_version)) => (new.clone(), new_version.clone()),
            None => (module, version),
        };
        catalog
            .packages
            .push(go_package(context, &final_module, &final_version));
    }
    catalog
}

/// Packages from the `modinfo` text of a Go binary (`path`, `mod`, `dep`, `=>` lines).
pub(super) fn packages_from_modinfo(
    go_version: &str,
    modinfo: &str,
    context: &CatalogContext<'_>,
) -> Vec<Package> {
    let mut packages: Vec<Package> = Vec::new();
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod", module, version, ..] if *version != "(devel)" => {
                packages.push(go_package(context, module, version));
            }
            ["dep", module, version, ..] => packages.push(go_package(context, module, version)),
            ["=>", module, version, ..] => {
                // A replacement applies to the dep line just before it.
                if let Some(last) = packages.last_mut() {
                    *last = go_package(context, module, version);
                }
            }
            _ => {}
        }
    }
    if let Some(version) = go_version.strip_prefix("go") {
        let release = version.split([' ', '-', '+']).next().unwrap_or(version);
        packages.push(go_package(context, "stdlib", &format!("v{release}")));
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    #[test]
    fn modinfo_dependencies_replacements_and_stdlib() {
        let modinfo = "path\texample.com/app/cmd/app\nmod\texample.com/app\tv1.2.3\th1:abc=\ndep\tgolang.org/x/net\tv0.7.0\th1:x=\n=>\tgolang.org/x/net\tv0.17.0\th1:y=\ndep\tgithub.com/pkg/errors\tv0.9.1\th1:z=\nbuild\t-compiler=gc\n";
        let limits = Limits::default();
        let context = CatalogContext {
            location: "/app",
            limits: &limits,
        };
        let packages = packages_from_modinfo("go1.21.5", modinfo, &context);
        let found: Vec<(&str, &str)> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("example.com/app", "v1.2.3"),
                ("golang.org/x/net", "v0.17.0"),
                ("github.com/pkg/errors", "v0.9.1"),
                ("stdlib", "v1.21.5")
            ]
        );
        assert_eq!(packages[1].purl, "pkg:golang/golang.org/x/net@v0.17.0");
        let devel = packages_from_modinfo(
            "go1.22.0 X:boringcrypto",
            "mod\texample.com/app\t(devel)\t\n",
            &context,
        );
        assert_eq!(
            devel.iter().map(|p| p.version.as_str()).collect::<Vec<_>>(),
            ["v1.22.0"]
        );
    }
}
