//! The contract suite (`tests/support/contract.rs`) against the local store, each test in a
//! fresh temporary store.

rotor_tests::contract_tests!(async { rotor_tests::contract::LocalFixture::new() });
rotor_tests::audit_contract_tests!(async { rotor_tests::contract::LocalFixture::new() });
