//! The projectcalico.org/v3 resource model with Calico's defaults and validation.
