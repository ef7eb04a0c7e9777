//! AF_XDP sockets for the fastpath: UMEM, rings, batched RX/TX, frame recycling.
