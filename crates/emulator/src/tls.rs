//! Certificates the emulator makes at start: a throw-away CA and a server certificate for
//! 127.0.0.1 and localhost (so HTTPS clients can trust the emulator through a CA file), and
//! RSA key pairs for JWT bearer apps that ask for a generated certificate.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256,
};

/// The TLS material of one emulator run.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// PEM of the CA that signed the server certificate; clients trust this file.
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// A throw-away CA and a server certificate for 127.0.0.1 and localhost signed by it.
fn ca_and_server() -> Result<(rcgen::Certificate, rcgen::Certificate, KeyPair), String> {
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.distinguished_name.push(DnType::CommonName, "Lightbridge Salesforce emulator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(err)?;
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).map_err(err)?;
    leaf_params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(err)?;
    Ok((ca_cert, leaf_cert, leaf_key))
}

pub fn generate_server_tls() -> Result<TlsMaterial, String> {
    let (ca_cert, leaf_cert, leaf_key) = ca_and_server()?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key_der)
            .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial { ca_pem: ca_cert.pem(), server_config: Arc::new(config) })
}

/// The same kind of CA and server certificate as PEM, for another TLS server a test starts
/// (the SMTP server of the e-mail tests): (CA, server certificate, server key).
pub fn generate_server_pem() -> Result<(String, String, String), String> {
    let (ca_cert, leaf_cert, leaf_key) = ca_and_server()?;
    Ok((ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()))
}

/// Generates an RSA-2048 key pair for a JWT bearer app. Returns the PKCS#8 private key PEM
/// and the PKCS#1 public key DER the emulator verifies with.
pub fn generate_jwt_key(label: &str) -> Result<(String, Vec<u8>), String> {
    let (key_pem, cert_pem) = generate_jwt_certificate(label)?;
    let public = crate::jwt::rsa_public_key_from_certificate(&cert_pem)?;
    Ok((key_pem, public))
}

/// Generates an RSA-2048 key and a self-signed certificate for it (PEM, PEM), the pair an admin
/// makes with openssl before uploading the certificate to a connected app.
pub fn generate_jwt_certificate(label: &str) -> Result<(String, String), String> {
    let err = |e: rcgen::Error| e.to_string();
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params.distinguished_name.push(DnType::CommonName, format!("JWT bearer key for {label}"));
    let cert = params.self_signed(&key).map_err(err)?;
    Ok((key.serialize_pem(), cert.pem()))
}
