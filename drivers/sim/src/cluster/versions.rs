//! ApiVersions: the advertised table, and the v0 `UNSUPPORTED_VERSION` answer to a client
//! asking at a version above ours.

use kafkit_core::protocol::api_versions::response::ApiVersion;
use kafkit_core::protocol::{ApiVersionsRequest, ApiVersionsResponse, ErrorCode, ResponseBody};

use super::{Cluster, Ctx, Outcome};

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

    pub(super) fn handle_api_versions(&mut self, _ctx: &Ctx, _req: ApiVersionsRequest) -> Outcome {
        Outcome::Reply(ResponseBody::ApiVersions(ApiVersionsResponse {
            error_code: ErrorCode::NONE.code(),
            api_keys: self.api_version_list(),
            ..Default::default()
        }))
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
