//! The PostgreSQL implementation of [`NotificationStore`].

use domain::{AccountId, DeliveryId, Millis, WebhookId};
use sqlx::Row;

use crate::notifications::{DELIVERY_COLUMNS, NotificationStore, WEBHOOK_COLUMNS, row_to_delivery, row_to_webhook};
use crate::postgres::{dialect, query, query_scalar, statements};
use crate::{PgStore, StoreError};

impl NotificationStore for PgStore {
    crate::notifications::shared_notification_methods!();
}
