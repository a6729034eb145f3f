-- What the ImageNet transfer records: top-5 accuracy beside top-1 for
-- every training epoch (NULL with fewer than five classes, and for epochs
-- recorded before), the images the loader skipped as unreadable (NULL for
-- datasets read whole from memory), and the multiply-adds of a trained
-- network beside its parameters (DARTS-family ImageNet tables report
-- both). Never edit this file once released.

ALTER TABLE train_epochs ADD COLUMN train_top5 REAL;
ALTER TABLE train_epochs ADD COLUMN test_top5 REAL;
ALTER TABLE train_epochs ADD COLUMN skipped_images INTEGER;

ALTER TABLE runs ADD COLUMN madds INTEGER;  -- train runs: multiply-adds of one image's forward pass
