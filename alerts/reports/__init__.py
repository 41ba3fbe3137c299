"""Usage reports: the figures of one account and period (builder), the email built from them
(email), sending each subscription's report exactly once per period (sending), the PDF of
the "Generate report" page (pdf), and the periods a frequency covers (periods)."""
