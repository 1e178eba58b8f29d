//! The 23 lock and metadata files of the images corpus (8 ecosystems) parse to their packages.
//! Each expected list was worked out by reading the file itself.

use palisade_scanner::{Limits, PackageKind, catalog_file_at};
use palisade_testkit::corpus_path;

fn assert_catalog(
    path_in_image: &str,
    corpus_file: &str,
    kind: PackageKind,
    expected: &[(&str, &str)],
) {
    let content = std::fs::read(corpus_path(format!("images/lockfiles/{corpus_file}")))
        .unwrap_or_else(|error| panic!("reading {corpus_file}: {error}"));
    let catalog = catalog_file_at(path_in_image, &content, &Limits::default())
        .unwrap_or_else(|| panic!("{path_in_image} is not cataloged"));
    assert!(
        catalog.issues.is_empty(),
        "{corpus_file}: {:?}",
        catalog.issues
    );
    let mut found: Vec<(String, String)> = catalog
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    let mut wanted: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    found.sort();
    wanted.sort();
    assert_eq!(found, wanted, "{corpus_file}");
    for package in &catalog.packages {
        assert_eq!(package.kind, kind, "{corpus_file}: {}", package.name);
        assert!(
            package.purl.starts_with("pkg:"),
            "{corpus_file}: purl of {} is {:?}",
            package.name,
            package.purl
        );
        assert_eq!(package.location, format!("/{path_in_image}"));
    }
}

#[test]
fn rust_cargo_lock_parses_to_its_packages() {
    assert_catalog(
        "app/Cargo.lock",
        "rust/Cargo.lock",
        PackageKind::Cargo,
        &[
            ("ansi_term", "0.12.1"),
            ("errno", "0.3.9"),
            ("matches", "0.1.8"),
            ("memchr", "2.3.3"),
            ("natord", "1.0.9"),
            ("nom", "4.2.3"),
            ("schannel", "0.1.26"),
            ("unicode-bidi", "0.3.4"),
            ("version_check", "0.1.5"),
            ("winapi", "0.3.9"),
            ("winapi-i686-pc-windows-gnu", "0.4.0"),
            ("winapi-x86_64-pc-windows-gnu", "0.4.0"),
            ("windows-sys", "0.52.0"),
            ("windows-sys", "0.59.0"),
        ],
    );
}

#[test]
fn rust_cargo_lock_with_git_deps_parses_to_its_packages() {
    assert_catalog(
        "app/Cargo.lock",
        "rust/Cargo.lock-with-git-deps",
        PackageKind::Cargo,
        &[
            ("aho-corasick", "1.1.3"),
            ("memchr", "2.7.4"),
            ("minimal-lexical", "0.2.1"),
            ("nom", "7.1.3"),
            ("nom-regex", "0.2.0"),
            ("regex", "1.11.1"),
            ("regex", "1.11.1"),
            ("regex-automata", "0.4.9"),
            ("regex-automata", "0.4.9"),
            ("regex-syntax", "0.8.5"),
            ("regex-syntax", "0.8.5"),
        ],
    );
}

#[test]
fn go_go_mod_parses_to_its_packages() {
    assert_catalog(
        "app/go.mod",
        "go/go.mod",
        PackageKind::Go,
        &[
            ("github.com/adrg/xdg", "v0.2.1"),
            (
                "github.com/anchore/go-testutils",
                "v0.0.0-20200624184116-66aa578126db",
            ),
            (
                "github.com/anchore/go-version",
                "v1.2.2-0.20200701162849-18adb9c92b9b",
            ),
            (
                "github.com/anchore/stereoscope",
                "v0.0.0-20200706164556-7cf39d7f4639",
            ),
            ("github.com/anchore/archiver/v3", "v3.5.2"),
            ("github.com/bmatcuk/doublestar", "v8.8.8"),
            ("github.com/go-test/deep", "v1.0.6"),
        ],
    );
}

#[test]
fn npm_package_lock_v1_json_parses_to_its_packages() {
    assert_catalog(
        "app/package-lock.json",
        "npm/package-lock-v1.json",
        PackageKind::Npm,
        &[
            ("@actions/core", "1.6.0"),
            ("ansi-regex", "3.0.0"),
            ("cowsay", "1.4.0"),
            ("get-stdin", "5.0.1"),
            ("is-fullwidth-code-point", "2.0.0"),
            ("minimist", "0.0.10"),
            ("async", "3.2.4"),
            ("optimist", "0.6.1"),
            ("string-width", "2.1.1"),
            ("strip-ansi", "4.0.0"),
            ("strip-eof", "1.0.0"),
            ("wordwrap", "0.0.3"),
        ],
    );
}

#[test]
fn npm_package_lock_v2_json_parses_to_its_packages() {
    assert_catalog(
        "app/package-lock.json",
        "npm/package-lock-v2.json",
        PackageKind::Npm,
        &[
            ("@types/prop-types", "15.7.5"),
            ("@types/react", "18.0.17"),
            ("@types/scheduler", "0.16.2"),
            ("async", "3.2.4"),
            ("csstype", "3.1.0"),
        ],
    );
}

#[test]
fn npm_package_lock_v3_json_parses_to_its_packages() {
    assert_catalog(
        "app/package-lock.json",
        "npm/package-lock-v3.json",
        PackageKind::Npm,
        &[
            ("@types/prop-types", "15.7.5"),
            ("@types/react", "18.0.20"),
            ("@types/scheduler", "0.16.2"),
            ("async", "3.2.4"),
            ("csstype", "3.1.1"),
        ],
    );
}

#[test]
fn npm_package_lock_v2_aliases_json_parses_to_its_packages() {
    assert_catalog(
        "app/package-lock.json",
        "npm/package-lock-v2-aliases.json",
        PackageKind::Npm,
        &[
            ("case", "1.6.2"),
            ("case", "1.6.3"),
            ("@bundled-es-modules/chai", "4.2.2"),
        ],
    );
}

#[test]
fn yarn_yarn_v1_lock_parses_to_its_packages() {
    assert_catalog(
        "app/yarn.lock",
        "yarn/yarn-v1.lock",
        PackageKind::Npm,
        &[
            ("@babel/code-frame", "7.10.4"),
            ("@types/minimatch", "3.0.3"),
            ("@types/qs", "6.9.4"),
            ("ajv", "6.12.3"),
            ("atob", "2.1.2"),
            ("aws-sdk", "2.706.0"),
            ("jhipster-core", "7.3.4"),
            ("asn1.js", "4.10.1"),
            ("c0n-fab_u.laTION", "7.7.7"),
        ],
    );
}

#[test]
fn yarn_yarn_berry_lock_parses_to_its_packages() {
    assert_catalog(
        "app/yarn.lock",
        "yarn/yarn-berry.lock",
        PackageKind::Npm,
        &[
            ("@babel/code-frame", "7.10.4"),
            ("@types/minimatch", "3.0.3"),
            ("@types/qs", "6.9.4"),
            ("ajv", "6.12.3"),
            ("atob", "2.1.2"),
            ("aws-sdk", "2.706.0"),
            ("jhipster-core", "7.3.4"),
            ("asn1.js", "4.10.1"),
        ],
    );
}

#[test]
fn pnpm_pnpm_lock_v6_yaml_parses_to_its_packages() {
    assert_catalog(
        "app/pnpm-lock.yaml",
        "pnpm/pnpm-lock-v6.yaml",
        PackageKind::Npm,
        &[
            ("@babel/core", "7.21.4"),
            ("@testing-library/jest-dom", "5.16.5"),
            ("@testing-library/react", "13.4.0"),
            ("@testing-library/user-event", "13.5.0"),
            ("@types/eslint", "8.37.0"),
            ("react-dom", "18.2.0"),
            ("react", "18.2.0"),
            ("read-cache", "1.0.0"),
            ("schema-utils", "3.1.2"),
            ("web-vitals", "2.1.4"),
        ],
    );
}

#[test]
fn pnpm_pnpm_lock_v9_yaml_parses_to_its_packages() {
    assert_catalog(
        "app/pnpm-lock.yaml",
        "pnpm/pnpm-lock-v9.yaml",
        PackageKind::Npm,
        &[
            ("@babel/core", "7.24.7"),
            ("@babel/helper-plugin-utils", "7.24.7"),
            ("is-positive", "3.1.0"),
            ("rollup", "4.18.0"),
        ],
    );
}

#[test]
fn python_requirements_txt_parses_to_its_packages() {
    assert_catalog(
        "app/requirements.txt",
        "python/requirements.txt",
        PackageKind::Python,
        &[
            ("flask", "4.0.0"),
            ("urllib3", "1.26.20"),
            ("foo", "1.0.0"),
            ("SomeProject", "5.4"),
            ("dots-._allowed", "1.0.0"),
            ("argh", "0.26.2"),
            ("argh", "0.26.3"),
            ("celery", "4.4.7"),
            ("GithubSampleProject", "3.7.1"),
            ("FrIeNdLy-_-bArD", "1.0.0"),
            ("local-version", "1.2.3+gcr.2"),
        ],
    );
}

#[test]
fn python_pipfile_lock_parses_to_its_packages() {
    assert_catalog(
        "app/Pipfile.lock",
        "python/Pipfile.lock",
        PackageKind::Python,
        &[
            ("aio-pika", "6.8.0"),
            ("aiodns", "2.0.0"),
            ("aiohttp", "3.7.4.post0"),
            ("aiohttp-jinja2", "1.4.2"),
            ("astroid", "2.5.2"),
            ("autopep8", "1.5.6"),
        ],
    );
}

#[test]
fn python_poetry_lock_parses_to_its_packages() {
    assert_catalog(
        "app/poetry.lock",
        "python/poetry.lock",
        PackageKind::Python,
        &[
            ("anyio", "4.3.0"),
            ("brotli", "1.1.0"),
            ("brotlicffi", "1.1.0.0"),
            ("certifi", "2024.2.2"),
            ("cffi", "1.16.0"),
            ("click", "7.1.2"),
            ("colorama", "0.4.6"),
            ("h11", "0.14.0"),
            ("h2", "4.1.0"),
            ("hpack", "4.0.0"),
            ("httpcore", "1.0.5"),
            ("httpx", "0.27.0"),
            ("hyperframe", "6.0.1"),
            ("idna", "3.7"),
            ("pprintpp", "0.4.0"),
            ("pycparser", "2.22"),
            ("pygments", "1.6"),
            ("rich", "0.3.3"),
            ("sniffio", "1.3.1"),
            ("socksio", "1.0.0"),
            ("typing-extensions", "3.10.0.2"),
        ],
    );
}

#[test]
fn python_uv_lock_parses_to_its_packages() {
    assert_catalog(
        "app/uv.lock",
        "python/uv.lock",
        PackageKind::Python,
        &[("certifi", "2025.10.5")],
    );
}

#[test]
fn python_dist_info_metadata_parses_to_its_packages() {
    assert_catalog(
        "usr/lib/python3/dist-packages/Pygments-2.6.1.dist-info/METADATA",
        "python/dist-info-METADATA",
        PackageKind::Python,
        &[("Pygments", "2.6.1")],
    );
}

#[test]
fn java_pom_properties_parses_to_its_packages() {
    assert_catalog(
        "app/META-INF/maven/org.anchore/example-java-app-maven/pom.properties",
        "java/pom.properties",
        PackageKind::Maven,
        &[("org.anchore:example-java-app-maven", "0.1.0")],
    );
}

#[test]
fn java_pom_xml_parses_to_its_packages() {
    assert_catalog(
        "app/pom.xml",
        "java/pom.xml",
        PackageKind::Maven,
        &[
            ("my.org:parent-two", "13.7.8"),
            ("org.apache.commons:commons-text", "1.12.0"),
            ("org.apache.commons:commons-collections4", "4.4"),
        ],
    );
}

#[test]
fn ruby_bundler_gemspec_parses_to_its_packages() {
    assert_catalog(
        "usr/local/bundle/specifications/bundler-2.1.4.gemspec",
        "ruby/bundler.gemspec",
        PackageKind::Gem,
        &[("bundler", "2.1.4")],
    );
}

#[test]
fn ruby_gemfile_lock_parses_to_its_packages() {
    assert_catalog(
        "app/Gemfile.lock",
        "ruby/Gemfile.lock",
        PackageKind::Gem,
        &[
            ("google-cloud-errors", "1.3.0"),
            ("turbolinks", "3.0.0"),
            ("actionmailer", "4.1.1"),
            ("actionpack", "4.1.1"),
            ("actionview", "4.1.1"),
            ("activemodel", "4.1.1"),
            ("activerecord", "4.1.1"),
            ("activesupport", "4.1.1"),
            ("arel", "5.0.1.20140414130214"),
            ("bootstrap-sass", "3.1.1.1"),
            ("builder", "3.2.2"),
            ("coffee-rails", "4.0.1"),
            ("coffee-script", "2.2.0"),
            ("coffee-script-source", "1.7.0"),
            ("erubis", "2.7.0"),
            ("execjs", "2.0.2"),
            ("hike", "1.2.3"),
            ("i18n", "0.6.9"),
            ("jbuilder", "2.0.7"),
            ("jquery-rails", "3.1.0"),
            ("json", "1.8.1"),
            ("kgio", "2.9.2"),
            ("libv8", "3.16.14.3"),
            ("mail", "2.5.4"),
            ("mime-types", "1.25.1"),
            ("minitest", "5.3.4"),
            ("multi_json", "1.10.1"),
            ("mysql2", "0.3.16"),
            ("polyglot", "0.3.4"),
            ("rack", "1.5.2"),
            ("rack-test", "0.6.2"),
            ("rails", "4.1.1"),
            ("railties", "4.1.1"),
            ("raindrops", "0.13.0"),
            ("rake", "10.3.2"),
            ("rdoc", "4.1.1"),
            ("ref", "1.0.5"),
            ("sass", "3.2.19"),
            ("sass-rails", "4.0.3"),
            ("sdoc", "0.4.0"),
            ("spring", "1.1.3"),
            ("sprockets", "2.11.0"),
            ("sprockets-rails", "2.1.3"),
            ("sqlite3", "1.3.9"),
            ("therubyracer", "0.12.1"),
            ("thor", "0.19.1"),
            ("thread_safe", "0.3.3"),
            ("tilt", "1.4.1"),
            ("treetop", "1.4.15"),
            ("tzinfo", "1.2.0"),
            ("uglifier", "2.5.0"),
            ("unicorn", "4.8.3"),
        ],
    );
}

#[test]
fn php_composer_lock_parses_to_its_packages() {
    assert_catalog(
        "app/composer.lock",
        "php/composer.lock",
        PackageKind::Composer,
        &[
            ("adoy/fastcgi-client", "1.0.2"),
            ("alcaeus/mongo-php-adapter", "1.1.11"),
            ("behat/gherkin", "v4.6.2"),
            ("codeception/codeception", "4.1.6"),
        ],
    );
}

#[test]
fn php_vendor_composer_installed_json_parses_to_its_packages() {
    assert_catalog(
        "app/vendor/composer/installed.json",
        "php/vendor-composer-installed.json",
        PackageKind::Composer,
        &[("asm89/stack-cors", "1.3.0"), ("behat/mink", "v1.8.1")],
    );
}

#[test]
fn dotnet_testlibrary_deps_json_parses_to_its_packages() {
    assert_catalog(
        "app/TestLibrary.deps.json",
        "dotnet/TestLibrary.deps.json",
        PackageKind::Nuget,
        &[
            ("AWSSDK.Core", "3.7.10.6"),
            (
                "Microsoft.Extensions.DependencyInjection.Abstractions",
                "6.0.0",
            ),
            ("Microsoft.Extensions.DependencyInjection", "6.0.0"),
            ("Microsoft.Extensions.Logging.Abstractions", "6.0.0"),
            ("Microsoft.Extensions.Logging", "6.0.0"),
            ("Microsoft.Extensions.Options", "6.0.0"),
            ("Microsoft.Extensions.Primitives", "6.0.0"),
            ("Newtonsoft.Json", "13.0.1"),
            ("Serilog.Sinks.Console", "4.0.1"),
            ("Serilog", "2.10.0"),
            ("System.Diagnostics.DiagnosticSource", "6.0.0"),
            ("System.Runtime.CompilerServices.Unsafe", "6.0.0"),
        ],
    );
}
