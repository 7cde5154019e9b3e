//! The refresh sweep: re-signing signatures before they expire, a bounded number per step.

use hickory_proto::rr::RecordType;

use super::*;

impl SignedZone {
    /// One refresh step: re-signs what is due among the zone file's RRsets and the next
    /// `SWEEP_NAMES` names of the chain. Returns `None` when nothing is due, else the
    /// signatures to store; the caller then raises the serial and calls
    /// [`SignedZone::finish`], which signs the marked chain links and the SOA.
    pub fn refresh(&mut self, now: u32) -> Result<Option<Vec<NewSignature>>, DnssecError> {
        let mut writes = Vec::new();
        let mut soa_due = false;
        // The zone file's names and the apex: few, checked every step.
        let statics: Vec<NameKey> = self.static_keys.iter().cloned().collect();
        for key in statics {
            let Some(entry) = self.snapshot.names.get(&key).cloned() else {
                continue;
            };
            for set in entry.rrsets() {
                let due = if apex_key_type(set.rtype()) {
                    self.expiring(set.sigs().bytes, now)
                } else {
                    self.due(set.sigs().bytes, now)
                };
                if !due {
                    continue;
                }
                match set.rtype() {
                    RecordType::SOA => soa_due = true,
                    RecordType::NSEC => {
                        self.dirty.insert(key.clone());
                    }
                    rtype => self.resign_static(&key, rtype, now, &mut writes)?,
                }
            }
        }
        if let Chain::Nsec3(links) = &self.snapshot.chain {
            let due: Vec<NameKey> = links
                .iter()
                .map(|(_, r)| r)
                .filter(|r| {
                    !self.is_node(&r.name)
                        && self.due(r.sigs.as_ref().map_or(&[][..], |s| s.bytes()), now)
                })
                .map(|r| r.name.clone())
                .collect();
            self.dirty.extend(due);
        }
        self.sweep_nodes(now, &mut writes)?;
        if writes.is_empty() && self.dirty.is_empty() && !soa_due {
            return Ok(None);
        }
        Ok(Some(writes))
    }

    /// Whether an RRset's signature must be made again: it is due by the policy, or the
    /// signing key did not make it (a rollover has switched keys).
    fn due(&self, sigs: &[u8], now: u32) -> bool {
        if sigs.is_empty() {
            return false;
        }
        let by: Vec<(u8, u16)> = all_rdata(sigs).filter_map(rrsig_key).collect();
        !self.signer.keys().is_current(&by) || self.expiring(sigs, now)
    }

    /// Whether any of an RRset's signatures is due by the policy.
    fn expiring(&self, sigs: &[u8], now: u32) -> bool {
        all_rdata(sigs).any(
            |rdata| match (rrsig_inception(rdata), rrsig_expiration(rdata)) {
                (Some(inception), Some(expiration)) => self.signer.due(inception, expiration, now),
                _ => false,
            },
        )
    }

    /// Re-signs a zone-file (or Herald-made apex) RRset from its source data.
    fn resign_static(
        &mut self,
        key: &NameKey,
        rtype: RecordType,
        now: u32,
        writes: &mut Vec<NewSignature>,
    ) -> Result<(), DnssecError> {
        let name = self.name_of(key)?;
        let generated = if key.is_empty() {
            self.generated_apex_rrsets()
        } else {
            Vec::new()
        };
        let (ttl, rdatas) = match generated.into_iter().find(|(t, _, _)| *t == rtype) {
            Some((_, ttl, rdatas)) => (ttl, rdatas),
            None => {
                let set = self
                    .zone
                    .rrsets
                    .get(&name)
                    .and_then(|sets| sets.iter().find(|s| s.rtype == rtype))
                    .ok_or_else(|| {
                        DnssecError::Inconsistent(format!("no {rtype} at {name} to re-sign"))
                    })?;
                (set.ttl, set.rdatas.clone())
            }
        };
        let (rrset, sigs) = self.sign_or_reuse(key, (rtype, ttl, &rdatas), None, now, writes)?;
        let entry = self
            .snapshot
            .names
            .get(key)
            .ok_or_else(|| DnssecError::Inconsistent(format!("no entry at {name}")))?
            .with_rrset(&rrset, Some(&sigs))?;
        self.snapshot.names.insert(entry);
        Ok(())
    }

    /// Examines up to [`SWEEP_NAMES`] names after the cursor; re-signs due node TXT RRsets and
    /// marks due NSEC/NSEC3 records, at most [`SWEEP_SIGNATURES`] in all.
    fn sweep_nodes(&mut self, now: u32, writes: &mut Vec<NewSignature>) -> Result<(), DnssecError> {
        let mut todo_txt: Vec<NameKey> = Vec::new();
        let mut todo_denial: Vec<NameKey> = Vec::new();
        let mut last = Cursor::Start;
        let mut seen = 0;
        let budget = if self.resigning {
            RESIGN_SIGNATURES
        } else {
            SWEEP_SIGNATURES
        };
        let full = |seen: usize, a: &Vec<NameKey>, b: &Vec<NameKey>| {
            seen >= SWEEP_NAMES || a.len() + b.len() >= budget
        };
        match &self.snapshot.chain {
            Chain::Nsec(order) => {
                let after = match &self.cursor {
                    Cursor::Nsec(k) => Some(&k[..]),
                    _ => None,
                };
                let mut last_key = None;
                for key in order.iter_after(after) {
                    seen += 1;
                    last_key = Some(key);
                    if self.is_node(key)
                        && let Some(entry) = self.snapshot.names.get(key)
                    {
                        if entry
                            .rrset(RecordType::TXT)
                            .is_some_and(|r| self.due(r.sigs().bytes, now))
                        {
                            todo_txt.push(NameKey::from(key));
                        }
                        if entry
                            .rrset(RecordType::NSEC)
                            .is_some_and(|r| self.due(r.sigs().bytes, now))
                        {
                            todo_denial.push(NameKey::from(key));
                        }
                    }
                    if full(seen, &todo_txt, &todo_denial) {
                        break;
                    }
                }
                if let Some(k) = last_key {
                    last = Cursor::Nsec(NameKey::from(k));
                }
            }
            Chain::Nsec3(links) => {
                let after = match &self.cursor {
                    Cursor::Nsec3(h) => Some(h),
                    _ => None,
                };
                for (h, rec) in links.iter_after(after) {
                    seen += 1;
                    last = Cursor::Nsec3(*h);
                    if self.is_node(&rec.name) {
                        if self.due(rec.sigs.as_ref().map_or(&[][..], |s| s.bytes()), now) {
                            todo_denial.push(rec.name.clone());
                        }
                        if let Some(entry) = self.snapshot.names.get(&rec.name)
                            && entry
                                .rrset(RecordType::TXT)
                                .is_some_and(|r| self.due(r.sigs().bytes, now))
                        {
                            todo_txt.push(rec.name.clone());
                        }
                    }
                    if full(seen, &todo_txt, &todo_denial) {
                        break;
                    }
                }
            }
        }
        // A step that stopped before its budget reached the end: start over next time.
        self.cursor = if full(seen, &todo_txt, &todo_denial) {
            last
        } else {
            self.sweeps += 1;
            self.resigning = false;
            Cursor::Start
        };
        for key in todo_txt {
            let record = self.node_record_from_entry(&key)?;
            let signed = self.txt_signed(&key, &record.payload, now)?;
            writes.push(self.put_node(&record, signed)?);
        }
        self.dirty.extend(todo_denial);
        Ok(())
    }

    /// Reads a node's current record back from its prepared TXT record, to re-sign it.
    fn node_record_from_entry(&self, key: &[u8]) -> Result<NodeRecord, DnssecError> {
        let bad = || {
            let name = self.name_of(key).map(|n| n.to_string()).unwrap_or_default();
            DnssecError::Inconsistent(format!("an unreadable node TXT record at {name}"))
        };
        let entry = self.snapshot.names.get(key).ok_or_else(bad)?;
        let rdata = entry
            .rrset(RecordType::TXT)
            .ok_or_else(bad)?
            .records()
            .first_rdata()
            .ok_or_else(bad)?;
        let (&len, text) = rdata.split_first().ok_or_else(bad)?;
        let text = std::str::from_utf8(text.get(..usize::from(len)).ok_or_else(bad)?)
            .map_err(|_| bad())?;
        Ok(NodeRecord {
            node: NodeLabel::parse(&node_label(key))?,
            payload: Payload::parse(text)?,
        })
    }
}
