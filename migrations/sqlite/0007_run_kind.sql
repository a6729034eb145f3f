-- What a run is: a search, or the training of a searched cell from scratch.
-- Train runs were told apart by their method text 'train' alone; the kind
-- is its own column so that code branches on it and more kinds (ImageNet
-- transfer, data-parallel training) fit without another magic method.
-- Train runs keep method 'train', so SQL written against the history still
-- finds them. `run_summary` is left as it is: `runs list --format csv`
-- prints every one of its columns. No CHECK on the kinds: a new kind would
-- then need the table rebuilt on SQLite, and the code refuses a kind it
-- does not know when it reads the row. Never edit this file once released.

ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'search';

UPDATE runs SET kind = 'train' WHERE method = 'train';
