//! ApiVersions: the advertised table, and the v0 `UNSUPPORTED_VERSION` answer to a client
//! asking at a version above ours.

use kafkit_core::protocol::api_versions::response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafkit_core::protocol::{ApiVersionsRequest, ApiVersionsResponse, ErrorCode, ResponseBody};

use super::{Cluster, Ctx, Outcome};

/// KIP-890's feature: level 2 is transaction protocol v2.
const TRANSACTION_VERSION: &str = "transaction.version";

impl Cluster {
    fn api_version_list(&self) -> Vec<ApiVersion> {
        self.versions
            .iter()
            .map(|(api, &(min, max))| ApiVersion {
                api_key: api.as_i16(),
                min_version: min,
                max_version: max,
                ..Default::default()
            })
            .collect()
    }

    pub(super) fn handle_api_versions(&mut self, ctx: &Ctx, _req: ApiVersionsRequest) -> Outcome {
        let mut resp = ApiVersionsResponse {
            error_code: ErrorCode::NONE.code(),
            api_keys: self.api_version_list(),
            ..Default::default()
        };
        let level = self.config.transaction_version;
        if ctx.version >= 3 && level > 0 {
            // KIP-584 features (tagged fields of v3+). The level never changes while the
            // cluster runs, so the epoch stays at 0.
            resp.supported_features = vec![SupportedFeatureKey {
                name: TRANSACTION_VERSION.into(),
                min_version: 0,
                max_version: 2,
                ..Default::default()
            }];
            resp.finalized_features_epoch = 0;
            resp.finalized_features = vec![FinalizedFeatureKey {
                name: TRANSACTION_VERSION.into(),
                max_version_level: level,
                min_version_level: level,
                ..Default::default()
            }];
        }
        Outcome::Reply(ResponseBody::ApiVersions(resp))
    }

    /// The answer to ApiVersions at a version above ours: v0 layout, `UNSUPPORTED_VERSION`,
    /// and our ranges so the client can retry at a version we know.
    pub(super) fn api_versions_unsupported(&self) -> ResponseBody {
        ResponseBody::ApiVersions(ApiVersionsResponse {
            error_code: ErrorCode::UNSUPPORTED_VERSION.code(),
            api_keys: self.api_version_list(),
            ..Default::default()
        })
    }
}
