//! People in several accounts (issue #13): an owner invites a person by email; the person
//! accepts — creating their sign-in if the email is new to Lightbridge, or, signed in as that
//! email, joining with the sign-in they have. Inviting answers the same whether or not the
//! email is known elsewhere, so an owner learns nothing about other accounts. A person in
//! several accounts chooses one at sign-in and can switch; each session and API token acts in
//! one account, with the person's role there.

use domain::{AccountId, Role, User, UserId};
use store::{AccessStore, Invitation, Membership};
use vault::Password;

use crate::audit::record;
use crate::secrets::{hash_token, random_token};
use crate::sessions::{Opened, Origin};
use crate::{Actor, Service, ServiceError};

/// How long an invitation can be accepted.
pub const INVITATION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// An invitation as the owner sees it (the link only right after inviting).
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationView {
    /// `inv_…`
    pub id: String,
    pub email: String,
    pub role: String,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The link to send the person: shown once, when the invitation is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_url: Option<String>,
}

impl InvitationView {
    fn of(i: &Invitation, accept_url: Option<String>) -> Self {
        InvitationView {
            id: i.id.clone(),
            email: i.email.clone(),
            role: i.role.as_str().to_string(),
            invited_by: i.invited_by.clone(),
            created_at: i.created_at,
            expires_at: i.expires_at,
            accept_url,
        }
    }
}

/// One of a person's accounts, as they choose between them.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountChoice {
    pub account_id: String,
    pub name: String,
    pub role: String,
    /// The account this session or token acts in.
    pub current: bool,
}

/// What an invitation's link shows before it is accepted.
#[derive(Debug, Clone)]
pub struct Pending {
    pub account_name: String,
    pub email: String,
    pub role: Role,
    /// The email already signs in to Lightbridge: accepting takes signing in as it.
    pub known: bool,
}

/// Invites a person to the owner's account. The answer is the same whether or not the email
/// signs in to another account; only a person already in *this* account is a `Conflict`.
pub async fn invite(svc: &Service, actor: &Actor, email: &str, role: &str) -> Result<InvitationView, ServiceError> {
    let account = actor.require_owner()?.clone();
    let mut errors = Vec::new();
    let (email, _) = crate::users::person(email, "", &mut errors);
    let role = crate::users::account_role(role)
        .map_err(|_| errors.push(("role".to_string(), format!("{role:?} is not one of owner, admin, editor, viewer"))))
        .ok();
    let (Some(role), true) = (role, errors.is_empty()) else {
        return Err(ServiceError::Invalid(errors));
    };
    let members = svc.store.users(&account).await?;
    if members.iter().any(|u| u.email.eq_ignore_ascii_case(&email)) {
        return Err(ServiceError::Conflict {
            field: Some("email"),
            message: format!("{email} is already in this account"),
        });
    }
    let token = random_token()?;
    let now = svc.now_ms();
    let invitation = Invitation {
        id: format!("inv_{}", &hash_token(&random_token()?)[..20]),
        account: account.clone(),
        email: email.clone(),
        role,
        invited_by: actor.user.email.clone(),
        created_at: now,
        expires_at: now + INVITATION_MS,
    };
    svc.store.create_invitation(&invitation, &hash_token(&token)).await?;
    let detail = Some(format!("as {}", role.as_str()));
    record(svc, actor.audit(now, "user.invited", "invitation", Some(invitation.id.as_str()), Some(&email), detail))
        .await;
    let url = format!("{}/invitations/{token}", svc.public_url.as_str().trim_end_matches('/'));
    Ok(InvitationView::of(&invitation, Some(url)))
}

/// The account's invitations not accepted yet (owners and admins look).
pub async fn invitations(svc: &Service, actor: &Actor) -> Result<Vec<InvitationView>, ServiceError> {
    let account = actor.require_people_reader()?;
    let list = svc.store.invitations(account, svc.now_ms()).await?;
    Ok(list.iter().map(|i| InvitationView::of(i, None)).collect())
}

/// Withdraws an invitation not accepted yet (the owner).
pub async fn withdraw(svc: &Service, actor: &Actor, id: &str) -> Result<(), ServiceError> {
    let account = actor.require_owner()?.clone();
    if id.len() > 64 {
        return Err(ServiceError::NotFound);
    }
    svc.store.withdraw_invitation(&account, id).await?;
    record(svc, actor.audit(svc.now_ms(), "user.invitation_withdrawn", "invitation", Some(id), None, None)).await;
    Ok(())
}

async fn live(svc: &Service, token: &str) -> Result<(Invitation, String), ServiceError> {
    if token.len() > 128 {
        return Err(ServiceError::NotFound);
    }
    Ok(svc.store.invitation(&hash_token(token), svc.now_ms()).await?)
}

/// What the invitation link shows (to whoever holds the link: the invited person).
pub async fn pending(svc: &Service, token: &str) -> Result<Pending, ServiceError> {
    let (invitation, account_name) = live(svc, token).await?;
    let known = match svc.store.user_by_email(&invitation.email).await {
        Ok(_) => true,
        Err(store::StoreError::NotFound) => false,
        Err(e) => return Err(e.into()),
    };
    Ok(Pending { account_name, email: invitation.email, role: invitation.role, known })
}

/// Accepts an invitation for an email new to Lightbridge: the person's sign-in is created with
/// their name and chosen password, they join the account, and are signed in to it.
pub async fn accept_new(
    svc: &Service,
    token: &str,
    name: &str,
    password: Password,
    origin: Origin,
) -> Result<Opened, ServiceError> {
    let (invitation, _) = live(svc, token).await?;
    let mut errors = Vec::new();
    let (email, name) = crate::users::person(&invitation.email, name, &mut errors);
    let context = [email.clone(), name.clone()];
    let hash = svc
        .cpu
        .run(move || {
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            crate::password::policy(&password, &context).and_then(|()| crate::password::hash(&password))
        })
        .await?
        .map_err(|e| errors.push(("password".to_string(), e)))
        .ok();
    let (Some(hash), true) = (hash, errors.is_empty()) else {
        return Err(ServiceError::Invalid(errors));
    };
    if !svc.store.accept_invitation(&invitation.id, svc.now_ms()).await? {
        return Err(ServiceError::NotFound);
    }
    let user = User {
        id: UserId::generate(),
        account_id: Some(invitation.account.clone()),
        email,
        name,
        role: invitation.role,
    };
    svc.store.create_user(&user, Some(&hash), svc.now_ms()).await.map_err(|e| match e {
        // The email signed up elsewhere meanwhile: sign in as it and accept.
        store::StoreError::Conflict(_) => ServiceError::conflict(
            "that email signs in to Lightbridge already: sign in, then open the invitation again",
        ),
        other => other.into(),
    })?;
    joined(svc, &user, &invitation).await;
    crate::sessions::start(svc, user, origin.device.clone(), origin, crate::sessions::How::Password).await
}

/// Accepts an invitation as the signed-in person it names: they join the account with the
/// sign-in they have. Returns the account joined.
pub async fn accept_signed_in(svc: &Service, actor: &Actor, token: &str) -> Result<AccountId, ServiceError> {
    let (invitation, _) = live(svc, token).await?;
    if !actor.user.email.eq_ignore_ascii_case(&invitation.email) {
        return Err(ServiceError::Conflict {
            field: None,
            message: format!("this invitation is for {}: sign in as that email to accept it", invitation.email),
        });
    }
    if !svc.store.accept_invitation(&invitation.id, svc.now_ms()).await? {
        return Err(ServiceError::NotFound);
    }
    match svc.store.add_membership(&actor.user.id, &invitation.account, invitation.role, svc.now_ms()).await {
        Ok(()) | Err(store::StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut user = actor.user.clone();
    user.account_id = Some(invitation.account.clone());
    user.role = invitation.role;
    joined(svc, &user, &invitation).await;
    Ok(invitation.account)
}

async fn joined(svc: &Service, user: &User, invitation: &Invitation) {
    let actor = Actor::new(user.clone(), domain::ActorKind::User, None);
    let detail = Some(format!("accepted the invitation of {} as {}", invitation.invited_by, invitation.role.as_str()));
    let entry = actor.audit_for(
        Some(invitation.account.clone()),
        svc.now_ms(),
        "user.joined",
        "user",
        Some(user.id.as_str()),
        Some(&user.email),
        detail,
    );
    record(svc, entry).await;
}

/// The accounts the caller belongs to, marking the one this request acts in.
pub async fn accounts(svc: &Service, actor: &Actor) -> Result<Vec<AccountChoice>, ServiceError> {
    let list: Vec<Membership> = svc.store.memberships_of(&actor.user.id).await?;
    Ok(list
        .into_iter()
        .map(|m| AccountChoice {
            current: actor.user.account_id.as_ref() == Some(&m.account),
            account_id: m.account.to_string(),
            name: m.account_name,
            role: m.role.as_str().to_string(),
        })
        .collect())
}

/// Switches a browser session to another of its person's accounts (another's is not found).
pub async fn switch(svc: &Service, actor: &Actor, session_id: &str, account: &str) -> Result<AccountId, ServiceError> {
    let account = AccountId::parse(account).map_err(|_| ServiceError::NotFound)?;
    svc.store.set_session_account(&hash_token(session_id), &account).await?;
    let entry = actor.audit_for(
        Some(account.clone()),
        svc.now_ms(),
        "session.account_switched",
        "user",
        Some(actor.user.id.as_str()),
        Some(&actor.user.email),
        None,
    );
    record(svc, entry).await;
    Ok(account)
}

/// Whether a person has more than one account to choose from.
pub async fn has_choice(svc: &Service, user: &User) -> Result<bool, ServiceError> {
    Ok(svc.store.memberships_of(&user.id).await?.len() > 1)
}
