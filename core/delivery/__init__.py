"""Delivery state shared by the server and the workers: the queue contract and
confirmed publishing (queue), claiming, recording attempts and releasing emails
(store), and dead letters (deadletter). The actors themselves live in workers/delivery/."""
