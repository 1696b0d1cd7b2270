"""Personal data: everything the app holds on one e-mail, exported or erased."""
