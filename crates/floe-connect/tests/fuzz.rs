//! What reaches the Connect runtime from outside as text — properties files, `CONNECT_*`
//! variables, `${provider:path:key}` placeholders in connector configs, the offsets a REST
//! client sends — is answered with a result or an error, never a panic. The case count follows
//! proptest's `PROPTEST_CASES`: a short run by default (CI), a long one by hand
//! (docs/security.md, "Untrusted input").

use std::collections::BTreeMap;

use floe_connect::config_provider::ConfigProviders;
use floe_connect::offsets::parse_request;
use floe_connect::properties::{connect_env_properties, parse_properties};
use proptest::prelude::*;

proptest! {
    #[test]
    fn properties_files(text in "(\\PC|[\\\\=:#! \\n\\r\\t])*", raw in proptest::collection::vec(any::<char>(), 0..64)) {
        let _ = parse_properties(&text);
        let _ = parse_properties(&raw.into_iter().collect::<String>());
    }

    #[test]
    fn connect_variables(names in proptest::collection::vec("CONNECT_[A-Z_]{0,12}", 0..4), value in "\\PC{0,12}") {
        let _ = connect_env_properties(names.into_iter().map(|n| (n, value.clone())));
    }

    #[test]
    fn placeholders(value in "(\\$\\{|[a-z:/.}]|\\PC){0,32}") {
        let worker: BTreeMap<String, String> = [
            ("config.providers", "file,env,directory"),
            ("config.providers.file.class", "org.apache.kafka.common.config.provider.FileConfigProvider"),
            ("config.providers.env.class", "org.apache.kafka.common.config.provider.EnvVarConfigProvider"),
            ("config.providers.directory.class", "org.apache.kafka.common.config.provider.DirectoryConfigProvider"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let providers = ConfigProviders::from_worker(&worker).unwrap_or_else(|e| panic!("{e}"));
        let config = BTreeMap::from([("k".to_string(), value)]);
        let _ = providers.resolve(&config);
    }

    #[test]
    fn offsets_requests(text in "[\\[\\]{}:,\"a-z_0-9. -]{0,64}") {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            let _ = parse_request(&json);
        }
    }
}
