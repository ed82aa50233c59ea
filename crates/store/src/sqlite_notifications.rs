//! The SQLite implementation of [`NotificationStore`].

use domain::{AccountId, DeliveryId, Millis, WebhookId};
use sqlx::Row;

use crate::notifications::{DELIVERY_COLUMNS, NotificationStore, WEBHOOK_COLUMNS, row_to_delivery, row_to_webhook};
use crate::sqlite::{dialect, query, query_scalar, statements};
use crate::{SqliteStore, StoreError};

impl NotificationStore for SqliteStore {
    crate::notifications::shared_notification_methods!();
}
