// PartnerSigning module.
