//! The admin client on smol: [`admin`] starts an [`AdminCore`] on the generic event loop and
//! hands out its [`AdminHandle`].

use kafkit_core::admin::AdminCore;
use kafkit_core::config::AdminConfig;
use kafkit_core::driver::{command_queue, AdminHandle, AdminHandler};
use kafkit_core::network::{NetOptions, SetupError};

use crate::{driver_env, run, SocketOptions};

/// Starts an admin client on a detached smol task and returns its handle. The loop needs an
/// executor polling it: smol's global executor, or any `block_on` around the caller. The handle is cheap to clone; the client's task stops when the last
/// clone is dropped.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> { smol::block_on(async {
/// use kafkit_core::admin::NewTopic;
/// use kafkit_core::config::AdminConfig;
///
/// let config = AdminConfig::builder().bootstrap_servers("localhost:9092").build()?;
/// let admin = kafkit_smol::admin(&config)?;
/// let created = admin.create_topics(vec![NewTopic::new("orders", 3, 1)], false).await?;
/// created["orders"].clone()?;
/// # Ok(()) }) }
/// ```
pub fn admin(config: &AdminConfig) -> Result<AdminHandle, SetupError> {
    let opts = NetOptions::from_config(&config.common, &driver_env())?;
    let socket = SocketOptions::from_config(&config.common);
    let (tx, rx) = command_queue();
    smol::spawn(run(
        AdminCore::new(config, opts),
        AdminHandler::default(),
        rx,
        socket,
        kafkit_core::driver::OpenWriters::new(),
    ))
    .detach();
    Ok(AdminHandle::new(tx))
}
